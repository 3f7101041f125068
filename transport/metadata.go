package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// MaxMetadata bounds the entries MetadataFromJSON makes.
const MaxMetadata = 64

// MetadataFromJSON flattens a JSON object (a start request's body, say)
// into Session.Metadata entries: each scalar at path a.b is the entry
// prefix.a.b, with strings as they are and numbers, booleans and null in
// their JSON form; array elements are numbered (prefix.items.0). Objects
// deeper than four levels, and entries beyond MaxMetadata, are left out.
// A body that is not a JSON object is an error.
func MetadataFromJSON(prefix string, body []byte) (map[string]string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("transport: metadata: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("transport: metadata: want a JSON object")
	}
	out := map[string]string{}
	var walk func(path string, v any, depth int)
	walk = func(path string, v any, depth int) {
		if len(out) >= MaxMetadata {
			return
		}
		switch v := v.(type) {
		case map[string]any:
			if depth < 4 {
				for k, e := range v {
					walk(path+"."+k, e, depth+1)
				}
			}
		case []any:
			if depth < 4 {
				for i, e := range v {
					walk(path+"."+strconv.Itoa(i), e, depth+1)
				}
			}
		case string:
			out[path] = v
		case json.Number:
			out[path] = v.String()
		case bool:
			out[path] = strconv.FormatBool(v)
		case nil:
			out[path] = "null"
		}
	}
	for k, e := range obj {
		walk(prefix+"."+k, e, 1)
	}
	return out, nil
}

// StartMetadata is the Session.Metadata of a session started with body (an
// RTVI /start's): its fields as "body.<field>" entries, none when body is
// empty or not a JSON object.
func StartMetadata(body []byte) map[string]string {
	if len(body) == 0 {
		return nil
	}
	md, err := MetadataFromJSON("body", body)
	if err != nil {
		return nil
	}
	return md
}
