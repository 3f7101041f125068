package frame

// DTMF is a key the caller pressed on a telephone keypad, received as an
// RFC 4733 telephone-event or a SIP INFO: one of '0'–'9', '*', '#' and
// 'A'–'D'. A transport emits one per key press, de-duplicated, as it
// arrives; the transport also collects the keys of an entry (up to '#' or a
// pause) into a typed Transcript that the agent answers.
type DTMF struct {
	Meta
	Digit byte
}

func (*DTMF) Class() Class { return System }
func (*DTMF) sealed()      {}

// DTMFDigit reports whether d is a DTMF key.
func DTMFDigit(d byte) bool {
	switch {
	case d >= '0' && d <= '9', d == '*', d == '#', d >= 'A' && d <= 'D':
		return true
	}
	return false
}
