#!/usr/bin/env python3
"""Replays what SEMS's own clients send (spec section 8): the pyqtgui
webconference.py and the sems-webconference-* tools, with Python's stock
xmlrpc.client. Exits non-zero (with a message) on the first mismatch.

usage: sems_clients.py URL ROOM_WITH_CALLER CALLEE_DOMAIN
"""
import random
import re
import sys
import xmlrpc.client

url, busy_room, callee_domain = sys.argv[1], sys.argv[2], sys.argv[3]
s = xmlrpc.client.ServerProxy(url)


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)


# Both pyqtgui and the tools call calls() first and print it.
calls = s.calls()
check(isinstance(calls, int), "calls() answers an int")
print("server has %d running calls" % calls)

# pyqtgui: up to 10 random 6-digit rooms, unpacking exactly 4 values.
for _ in range(10):
    room = "%06d" % random.randint(0, 999999)
    code, result, adminpin, serverstatus = s.di('webconference', 'roomCreate', room)
    if code == 0:
        break
check(code == 0 and result == "OK", "roomCreate opens a room")
check(re.fullmatch(r"[0-9]{6}", adminpin) is not None, "the admin pin is 6 digits")
check(serverstatus.startswith("Server: ") and " calls: " in serverstatus, "server status string")

# pyqtgui polls roomInfo and unpacks 4 values, each participant into 6.
res = s.di('webconference', 'roomInfo', room, adminpin)
check(res[0] == 0, "roomInfo with the right pin")
code, reason, participants, serverstatus = res
check(participants == [], "a fresh room has nobody")

# A room a caller dialled into (empty pin): roomCreate gives it a pin.
code, result, busy_pin, _ = s.di('webconference', 'roomCreate', busy_room)
check(code == 0, "roomCreate on a dial-in room assigns a pin")
code, reason, participants, _ = s.di('webconference', 'roomInfo', busy_room, busy_pin)
check(code == 0 and len(participants) == 1, "the caller is listed")
statuses = {0: "Disconnected", 1: "Connecting", 2: "Ringing", 3: "Connected", 4: "Disconnecting", 5: "Finished"}
for p in participants:
    call_tag, number, status, reason, muted, participant_id = p
    check(statuses[status] == "Connected", "the caller is connected")
    check(not muted, "not muted")
    check(re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{16}-[0-9A-F]{8}", call_tag) is not None, "call tag format")
    check(reason == "direct access: entered", "reason")
    # Kick/mute: pyqtgui ignores the results, but they must be OK.
    check(s.di('webconference', 'mute', busy_room, busy_pin, call_tag)[0] == 0, "mute")
    check(s.di('webconference', 'unmute', busy_room, busy_pin, call_tag)[0] == 0, "unmute")
    check(s.di('webconference', 'kickout', busy_room, busy_pin, call_tag)[0] == 0, "kickout")

# pyqtgui "call someone": 7 strings, then 4 values with the call tag.
res = s.di('webconference', 'dialout', room, adminpin, "bob", "conference", callee_domain, "user", "password")
check(res[0] == 0, "dialout placed (code %r)" % (res[0],))
code, result, callid, serverinfo = res
check(re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{16}-[0-9A-F]{8}", callid) is not None, "dialout returns the call tag")
code, reason, participants, _ = s.di('webconference', 'roomInfo', room, adminpin)
check(any(p[0] == callid and p[1] == "sip:bob@" + callee_domain for p in participants), "the dialled record is listed")

# sems-webconference-addparticipant room participant_id number
check(s.di('webconference', 'addParticipant', room, "4711", "sip:carol@example.com")[0] == 200, "addParticipant")

# Before 2011 pyqtgui used the direct export.
code, result, pin2, _ = s.roomCreate(room + "x")
check(code == 0, "direct roomCreate")
check(s.webconference.roomInfo(room + "x", pin2)[0] == 0, "webconference.roomInfo")

# Faults as SEMS raises them.
try:
    s.di('webconference', 'nosuchmethod')
    check(False, "unknown function must fault")
except xmlrpc.client.Fault as f:
    check(f.faultCode == 504, "fault 504 for an unknown function")

# Several calls in one request.
mc = xmlrpc.client.MultiCall(s)
mc.calls()
mc.di('webconference', 'serverInfo')
out = list(mc())
check(isinstance(out[0], int) and out[1][0] == out[1][1], "system.multicall")
print("OK")
