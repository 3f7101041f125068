package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// JSONError describes a JSON decoding error for a client, in the terms of
// the wire format: the field and the JSON type that was wrong, or where
// the syntax broke. encoding/json's own messages name the server's Go
// types ("Go struct field clientMsg.text of type string"), which tell a
// client nothing useful and an attacker something.
func JSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: a JSON %s is not allowed here", te.Field, te.Value)
		}
		return fmt.Sprintf("a JSON %s is not allowed here", te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "invalid JSON"
}
