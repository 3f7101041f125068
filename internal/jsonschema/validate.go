package jsonschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// root names the whole value in errors: schemas describe tool arguments.
const root = "arguments"

// ValidationError says where and why a value does not match its schema.
// It wraps ErrInvalid.
type ValidationError struct {
	// Path names the value: "arguments" for the whole value (and for data
	// that is not one JSON value), else field names and indexes
	// ("lines[0].quantity").
	Path   string
	Reason string
}

func (e *ValidationError) Error() string { return e.Path + ": " + e.Reason }

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Validate decodes data, which must hold exactly one JSON value, and checks
// it against s: the value must be an object; unknown fields, missing
// required fields, wrong types, fractional or out-of-range integers and
// values outside an enum are errors. Every error is a *ValidationError,
// which wraps ErrInvalid, naming the first offending field (fields in name
// order). A value Validate accepts decodes into the struct with
// encoding/json. data is untrusted: Validate never panics on it.
func (s *Schema) Validate(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return invalid(root, "not JSON: %v", err)
	}
	if len(bytes.Trim(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return invalid(root, "trailing data after the value")
	}
	return s.root.validate("", v)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// fieldPath names field name of the object at path. A name that could be
// misread in a path (empty, or holding '.', '[', ']', '"', spaces or
// non-printable characters) is quoted.
func fieldPath(path, name string) string {
	if name == "" || strings.ContainsAny(name, `.[]" `) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		name = strconv.Quote(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// validate checks a value decoded with UseNumber against n; path names it
// in errors ("" is the arguments object itself).
func (n *node) validate(path string, v any) error {
	where := path
	if where == "" {
		where = root
	}
	if v == nil {
		if n.nullable {
			return nil
		}
		return invalid(where, "want %s, got null", n.typ)
	}
	bad := func() error { return invalid(where, "want %s, got %s", n.typ, jsonKind(v)) }
	switch n.typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if len(n.enum) > 0 {
			q, _ := json.Marshal(s)
			if !slices.Contains(n.enum, string(q)) {
				return invalid(where, "%s is not one of %s", q, strings.Join(n.enum, ", "))
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case "integer", "number":
		num, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		if n.typ == "integer" {
			if _, err := strconv.ParseInt(num.String(), 10, 64); err != nil {
				if _, uerr := strconv.ParseUint(num.String(), 10, 64); uerr != nil || !n.unsigned {
					return invalid(where, "want integer, got %s", num)
				}
			}
			if n.unsigned && strings.HasPrefix(num.String(), "-") {
				return invalid(where, "want a non-negative integer, got %s", num)
			}
		} else if _, err := num.Float64(); err != nil {
			return invalid(where, "number %s out of range", num)
		}
		if len(n.enum) > 0 {
			f, _ := num.Float64()
			if !slices.ContainsFunc(n.enum, func(e string) bool { g, _ := strconv.ParseFloat(e, 64); return g == f }) {
				return invalid(where, "%s is not one of %s", num, strings.Join(n.enum, ", "))
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return bad()
		}
		for i, e := range arr {
			if err := n.elem.validate(fmt.Sprintf("%s[%d]", where, i), e); err != nil {
				return err
			}
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			i := slices.IndexFunc(n.fields, func(f field) bool { return f.name == k })
			if i < 0 {
				return invalid(fieldPath(path, k), "unknown field")
			}
			if err := n.fields[i].node.validate(fieldPath(path, k), obj[k]); err != nil {
				return err
			}
		}
		for _, f := range n.fields {
			if _, ok := obj[f.name]; f.required && !ok {
				return invalid(fieldPath(path, f.name), "missing required field")
			}
		}
	}
	return nil
}

func invalid(path, format string, args ...any) error {
	return &ValidationError{Path: path, Reason: fmt.Sprintf(format, args...)}
}
