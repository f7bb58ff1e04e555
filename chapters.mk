# Generated from chapters.yml by `python tools/chapters.py generate`: do not edit.
CHAPTERS ?= ch01_gradients ch02_rnn ch03_vanishing ch04_lstm ch05_gru ch06_bidirectional ch07_applications ch08_attention ch10_ctc
BOOK_CHAPTERS := notation ch01_gradients ch02_rnn ch03_vanishing ch04_lstm ch05_gru ch06_bidirectional ch07_applications ch08_attention ch09_practice ch10_ctc appendix_speed
