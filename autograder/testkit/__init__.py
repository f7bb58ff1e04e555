"""The hidden tests' kit: what every chapter's tests share. A chapter imports this kit, never another chapter.

| module | what |
|---|---|
| ``checks`` | array, scalar, tuple and "inputs unmodified" checks with messages that name what differs |
| ``shapes`` | the one generator of random shapes (always D != H), arrays and parameter dicts |
| ``torchref`` | trusted references: torch autograd in float64 (vjp, value_and_grads), torch.nn cells and sequences |
| ``mistakes`` | known-mistake detectors: a sentence naming the classic mistake that reproduces an output |
| ``numgrad`` | numerical gradients of a trusted forward, and their comparison with a student's backward |
| ``modules`` | checks of from-scratch ``nn.Module``s against torch.nn (state_dict, init, parity, backward, device) |
| ``manifest`` | ``chapters.yml`` as Python; ``forbidden(__name__)`` gives a test file its ``FORBIDDEN`` |
| ``reference`` | instructor-only reference code: ``steps`` (the trusted stand-ins of dependency isolation) and the benchmarks' LSTMs; never released |

Everything here runs in the grader's trusted process; nothing here is sent to the student's process.
"""
