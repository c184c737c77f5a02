"""The offline program diff of two trees (`make diff`): evaluation, comparison, rendering, output scan."""
