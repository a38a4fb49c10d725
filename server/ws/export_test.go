package ws

// BurstOf is the per-session burst of a frame kind's limit class, 0 if
// the kind is not limited.
func BurstOf(kind string) int {
	if c := frameClass[kind]; c != nil {
		return c.burst
	}
	return 0
}
