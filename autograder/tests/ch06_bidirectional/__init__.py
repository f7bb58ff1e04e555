"""Hidden tests of chapter 6 (bidirectional and deep RNNs)."""
