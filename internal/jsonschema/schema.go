// Package jsonschema derives the JSON Schema of a Go struct type, the
// schema a model is offered for a tool's arguments, and validates JSON
// values against it strictly, so that a model's malformed call is reported
// field by field instead of being half-decoded.
//
// It covers the subset of JSON Schema that tool arguments need: the types
// string, integer, number, boolean, array and object, "enum",
// "description", "minimum": 0 for unsigned integers, "required" and
// "additionalProperties": false. A Schema is immutable and safe for
// concurrent use.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

var (
	// ErrType is returned by For for a type it cannot describe, or a bad
	// jsonschema tag.
	ErrType = errors.New("jsonschema: cannot describe type")
	// ErrInvalid is wrapped by every error of Validate.
	ErrInvalid = errors.New("jsonschema: invalid value")
)

// Schema is the schema of a Go struct type.
type Schema struct {
	root *node
	text json.RawMessage
}

// For derives the schema of t, a struct type, from its exported fields:
//
//   - the name is the field's json tag name (fields tagged "-" are skipped,
//     embedded structs are flattened);
//   - string → "string", signed and unsigned integers → "integer" (unsigned
//     with "minimum": 0), floats → "number", bool → "boolean", slices and
//     arrays → "array", structs → "object" with "additionalProperties":
//     false; other kinds (maps, interfaces, channels, []byte) and recursive
//     types are refused with ErrType;
//   - a field is required unless it is a pointer (which also accepts null),
//     its json tag says omitempty, or its jsonschema tag says optional;
//   - the jsonschema tag holds comma-separated options: "required",
//     "optional", "enum=a|b|c" (strings, integers or numbers, by the field's
//     type) and "description=..." which must come last and takes the rest of
//     the tag, commas included.
func For(t reflect.Type) (*Schema, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %v is not a struct", ErrType, t)
	}
	root, err := describe(t, map[reflect.Type]bool{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrType, err)
	}
	var b bytes.Buffer
	root.writeSchema(&b)
	return &Schema{root: root, text: b.Bytes()}, nil
}

// JSON returns the schema as compact JSON, keys in a fixed order and
// properties in declaration order. The caller must not modify it.
func (s *Schema) JSON() json.RawMessage { return s.text }

// node is the derived description of one value: it writes the JSON
// Schema and validates decoded arguments against it.
type node struct {
	typ      string // string, integer, number, boolean, array, object
	unsigned bool
	desc     string
	enum     []string // JSON texts of the allowed values
	nullable bool
	elem     *node   // array
	fields   []field // object
}

type field struct {
	name     string
	required bool
	node     *node
}

func describe(t reflect.Type, busy map[reflect.Type]bool) (*node, error) {
	nullable := false
	if t.Kind() == reflect.Pointer {
		nullable = true
		t = t.Elem()
	}
	n := &node{nullable: nullable}
	switch t.Kind() {
	case reflect.String:
		n.typ = "string"
	case reflect.Bool:
		n.typ = "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n.typ = "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n.typ, n.unsigned = "integer", true
	case reflect.Float32, reflect.Float64:
		n.typ = "number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, fmt.Errorf("unsupported type %s", t)
		}
		elem, err := describe(t.Elem(), busy)
		if err != nil {
			return nil, err
		}
		n.typ, n.elem = "array", elem
	case reflect.Struct:
		if busy[t] {
			return nil, fmt.Errorf("recursive type %s", t)
		}
		busy[t] = true
		defer delete(busy, t)
		n.typ = "object"
		if err := n.addFields(t, busy); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported type %s", t)
	}
	return n, nil
}

func (n *node) addFields(t reflect.Type, busy map[reflect.Type]bool) error {
	for i := range t.NumField() {
		f := t.Field(i)
		jtag := f.Tag.Get("json")
		if jtag == "-" {
			continue
		}
		name, jopts, _ := strings.Cut(jtag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if err := n.addFields(f.Type, busy); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		child, err := describe(f.Type, busy)
		if err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
		required := !child.nullable && !slices.Contains(strings.Split(jopts, ","), "omitempty")
		tag := f.Tag.Get("jsonschema")
		for tag != "" {
			var opt string
			if strings.HasPrefix(tag, "description=") {
				child.desc, tag = strings.TrimPrefix(tag, "description="), ""
				break
			}
			opt, tag, _ = strings.Cut(tag, ",")
			switch key, val, _ := strings.Cut(opt, "="); key {
			case "required":
				required = true
			case "optional":
				required = false
			case "enum":
				if err := child.setEnum(val); err != nil {
					return fmt.Errorf("field %s: %w", f.Name, err)
				}
			default:
				return fmt.Errorf("field %s: unknown jsonschema option %q", f.Name, opt)
			}
		}
		for _, have := range n.fields {
			if have.name == name {
				return fmt.Errorf("duplicate field name %q", name)
			}
		}
		n.fields = append(n.fields, field{name: name, required: required, node: child})
	}
	return nil
}

func (n *node) setEnum(list string) error {
	if list == "" {
		return errors.New("empty enum")
	}
	for _, v := range strings.Split(list, "|") {
		switch n.typ {
		case "string":
			b, _ := json.Marshal(v)
			n.enum = append(n.enum, string(b))
		case "integer":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("enum value %q is not an integer", v)
			}
			n.enum = append(n.enum, v)
		case "number":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("enum value %q is not a number", v)
			}
			n.enum = append(n.enum, strconv.FormatFloat(f, 'g', -1, 64))
		default:
			return fmt.Errorf("enum on a %s", n.typ)
		}
	}
	return nil
}

// writeSchema writes n as compact JSON Schema with keys in a fixed order
// and properties in declaration order.
func (n *node) writeSchema(b *bytes.Buffer) {
	b.WriteString(`{"type":"`)
	b.WriteString(n.typ)
	b.WriteByte('"')
	if n.desc != "" {
		d, _ := json.Marshal(n.desc)
		b.WriteString(`,"description":`)
		b.Write(d)
	}
	if len(n.enum) > 0 {
		b.WriteString(`,"enum":[`)
		b.WriteString(strings.Join(n.enum, ","))
		b.WriteByte(']')
	}
	if n.unsigned {
		b.WriteString(`,"minimum":0`)
	}
	switch n.typ {
	case "array":
		b.WriteString(`,"items":`)
		n.elem.writeSchema(b)
	case "object":
		b.WriteString(`,"properties":{`)
		var req []string
		for i, f := range n.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(f.name)
			b.Write(k)
			b.WriteByte(':')
			f.node.writeSchema(b)
			if f.required {
				req = append(req, string(k))
			}
		}
		b.WriteString(`},"required":[`)
		b.WriteString(strings.Join(req, ","))
		b.WriteString(`],"additionalProperties":false`)
	}
	b.WriteByte('}')
}
