# Generated from chapters.yml by `python tools/chapters.py generate`: do not edit.
CHAPTERS ?= ch01_gradients ch02_rnn ch03_vanishing ch04_lstm ch05_gru ch06_bidirectional ch07_applications
BOOK_CHAPTERS := ch01_gradients ch02_rnn ch03_vanishing ch04_lstm ch05_gru ch06_bidirectional ch07_applications ch08_attention appendix_speed
