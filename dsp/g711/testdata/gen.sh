#!/bin/sh
# Regenerates the G.711 golden vectors with SoX (tested with SoX 14.4.2).
# -D disables dither and -R makes runs repeatable, so the files depend only on
# SoX's G.711 codec, not on random noise.
#
#   sweep.s16        8 kHz mono s16le: a full-scale 100->3900 Hz sine sweep,
#                    then a quiet (-40 dBFS) 3900->100 Hz sweep, 0.5 s each
#   sweep.ulaw/.alaw sweep.s16 encoded by SoX
#   sweep.ulaw.s16 / sweep.alaw.s16  those codes decoded back by SoX
# SoX warns that a few full-scale samples clip: intended, it exercises the
# top segment and the clip path of both encoders.
set -eu
cd "$(dirname "$0")"
raw="-t raw -r 8000 -c 1"
sox -D -R -n $raw -e signed -b 16 loud.s16 synth 0.5 sine 100-3900 vol 0.999
sox -D -R -n $raw -e signed -b 16 quiet.s16 synth 0.5 sine 3900-100 vol 0.01
sox -D -R $raw -e signed -b 16 loud.s16 $raw -e signed -b 16 quiet.s16 $raw -e signed -b 16 sweep.s16
rm -f loud.s16 quiet.s16
sox -D -R $raw -e signed -b 16 sweep.s16 $raw -e u-law -b 8 sweep.ulaw
sox -D -R $raw -e signed -b 16 sweep.s16 $raw -e a-law -b 8 sweep.alaw
sox -D -R $raw -e u-law -b 8 sweep.ulaw $raw -e signed -b 16 sweep.ulaw.s16
sox -D -R $raw -e a-law -b 8 sweep.alaw $raw -e signed -b 16 sweep.alaw.s16
