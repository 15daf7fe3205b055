#!/bin/sh
# Regenerates the built-in prompts under audio/ (run from anywhere; needs
# espeak-ng and sox: `apt-get install -y espeak-ng sox`).
#
# Output is deterministic for a given espeak-ng/sox version: espeak-ng has no
# randomness and sox runs with -D (no dither, which would add random noise).
# Generated with espeak-ng 1.51 and SoX 14.4.2.
#
# Each prompt is: espeak-ng (en-us, 150 wpm, 22050 Hz) -> trim leading and
# trailing silence (below 0.5% of full scale; the trailing end is trimmed on
# the reversed audio, since sox cannot know where the end is while streaming)
# -> 20 ms fade-out and 5 ms fade-in so the cuts never click -> resample to 8000 Hz with sox's very-high-quality (-v)
# linear-phase resampler -> normalise to -6 dBFS peak -> 100 ms of silence
# appended so the prompt does not end abruptly -> 16-bit mono PCM WAV.
set -eu

cd "$(dirname "$0")"
out=audio
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out/digits"

say() { # say <file> <text>
	espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "$2"
	sox -V1 -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$1" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% fade q 0.02 reverse fade q 0.005 \
		rate -v 8000 \
		norm -6 \
		pad 0 0.1
}

say "$out/enter_pin.wav" "Welcome to the conference. Please enter your room number, followed by the pound key."
say "$out/wrong_pin.wav" "The room number is not correct. Please try again."
say "$out/wrong_pin_bye.wav" "The room number is not correct. Goodbye."
say "$out/entering_conference.wav" "You are entering the conference now."
say "$out/first_participant.wav" "You are the first participant in this conference."
say "$out/meeting_not_started.wav" "This meeting has not started yet. Please call again later. Goodbye."
say "$out/meeting_ended.wav" "This meeting is over. Goodbye."
say "$out/conference_full.wav" "This conference is full. Goodbye."
say "$out/lobby_wait.wav" "Please wait, the host will let you in."
say "$out/room_locked.wav" "This conference is locked."

i=0
for word in zero one two three four five six seven eight nine; do
	say "$out/digits/$i.wav" "$word"
	i=$((i + 1))
done
