#!/bin/sh
# A stand-in for qmail's bin/qmail-queue in the QMAILQUEUE tests: reads the message on fd 0 and
# then the envelope on fd 1, as qmail-queue does, and records both (and its environment) in
# $FAKE_QQ_DIR. Exits $FAKE_QQ_EXIT (default 0); with $FAKE_QQ_ERROR set it writes that text to
# fd 6 first (the custom-error patch's channel).
cat >"$FAKE_QQ_DIR/message"
cat <&1 >"$FAKE_QQ_DIR/envelope"
env >"$FAKE_QQ_DIR/env"
if [ -n "${FAKE_QQ_ERROR:-}" ]; then printf '%s' "$FAKE_QQ_ERROR" >&6; fi
exit "${FAKE_QQ_EXIT:-0}"
