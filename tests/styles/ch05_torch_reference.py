# ch05 gru_torch as the reference writes it: a mistake in the cell costs points on GRUCell only (GRU is
# judged against the loop over the student's own GRUCell).
STYLE = {}

MUTANTS = {
    "update rule mirrored (z * n + (1 - z) * h)": ("GRUCell", ("return (1 - z) * n + z * h", "return z * n + (1 - z) * h")),
}
