package sipapp

// reasonLocked is the reason phrase of the 403 a direct call to a locked
// room gets before the answer.
const reasonLocked = "Forbidden (Conference Locked)"

// refuseLocked tells a caller on the way into a locked room (it was
// locked after the INVITE was let through, or the caller typed its
// number) that it is locked, and hangs up.
func (c *call) refuseLocked(room string) {
	c.log.Info("room is locked", "room", room)
	c.refuse(ReasonLocked, c.s.opt.Prompts.RoomLocked)
}
