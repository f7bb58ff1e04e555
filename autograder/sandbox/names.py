"""The names the guards stand for: what a forbidden module name means at run time (the recurrent
kernels, their decompositions, the clipping functions, other ways to a recurrent layer), and the
attribute names and audit events refused to student code."""
# What a forbidden module name stands for at run time: torch._VF, torch._C and torch.ops.aten expose
# the recurrent kernels (also as torch.lstm_cell, ...; torch._decomp holds their Python versions);
# torch.nn.utils the clipping functions.
_LAYERS = ("LSTM", "LSTMCell", "GRU", "GRUCell", "RNN", "RNNCell", "RNNBase", "RNNCellBase")
_KERNELS = ("lstm", "lstm_cell", "gru", "gru_cell", "rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell",
            "quantized_lstm", "quantized_gru", "quantized_lstm_cell", "quantized_gru_cell",
            "quantized_rnn_tanh_cell", "quantized_rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell",
            "mkldnn_rnn_layer", "_cudnn_rnn", "miopen_rnn", "_lstm_mps")
_DECOMP = ("lstm_impl", "gru_impl", "rnn_tanh_input", "rnn_relu_input", "rnn_tanh_data", "rnn_relu_data",
           "lstm_data_impl", "gru_impl_data", "one_layer_lstm", "one_layer_lstm_data", "one_layer_rnn_data",
           "lstm_cell", "gru_cell", "rnn_cell", "rnn_cell_data", "gru_cell_data", "mkldnn_one_layer_lstm")
# Other ways to a recurrent layer that runs no guarded kernel: the quantization toolkit's LSTM, written
# in Python from Linear layers; TorchScript compiled from a string or loaded from bytes (aten::lstm_cell
# called from C++).
_ELSEWHERE = ("torch.ao.nn.quantizable.LSTM", "torch.ao.nn.quantizable.LSTMCell",
              "torch.ao.nn.quantizable.modules.rnn._LSTMLayer", "torch.ao.nn.quantizable.modules.rnn._LSTMSingleLayer",
              "torch.ao.nn.quantized.dynamic.LSTM", "torch.ao.nn.quantized.dynamic.GRU",
              "torch.ao.nn.quantized.dynamic.LSTMCell", "torch.ao.nn.quantized.dynamic.GRUCell",
              "torch.ao.nn.quantized.dynamic.RNNCell", "torch.jit.script", "torch.jit.load", "torch.jit.trace",
              "torch.jit.CompilationUnit", "torch._C.CompilationUnit", "torch._C._jit_script_compile",
              "torch._C.import_ir_module", "torch._C.import_ir_module_from_buffer", "torch.compile")
_CLIPPING = ("clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
             "_clip_grads_with_norm_", "_get_total_norm")
# Attribute names that student code may not read through getattr() at run time (the syntax check
# refuses them written out): ways to the originals behind the guards.
_ESCAPES = frozenset({"__closure__", "cell_contents", "__globals__", "__code__", "__func__", "__self__",
                      "__wrapped__", "__subclasses__", "__getattribute__", "__dict__", "__builtins__",
                      "__reduce__", "__reduce_ex__", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
                      "tb_frame", "gi_frame", "cr_frame", "ag_frame", "gi_code", "_getframe", "get_objects",
                      "get_referents", "get_referrers", "attrgetter", "methodcaller", "getattr_static", "modules",
                      "import_module", "__import__", "_vault", "_VF", "_C", "_VariableFunctions",
                      "_VariableFunctionsClass", "_decomp", "_jit_get_operation", "vf", "setprofile", "settrace"})
_NEVER_EXPOSE = ("numpy", "scipy", "matplotlib", "sympy", "PIL", "sklearn", "pandas", "mpl_toolkits", "IPython")
# Audit events refused while student code is on the stack (gc's introspection: always).
_AUDIT_REFUSED = ("ctypes.", "pickle.find_class", "code.__new__", "function.__new__",
                  "sys.setprofile", "sys.settrace")
_AUDIT_FRAMES = ("__code__", "f_code", "tb_frame", "gi_frame", "gi_code", "cr_frame", "ag_frame", "f_back")


