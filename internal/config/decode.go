package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// The sections of the file use the processors' and providers' own Config
// types (vad.Config, turntaking.Config, …), whose durations are time.Duration:
// an int64 that TOML would only accept as a count of nanoseconds. decode
// lets the file write them as strings ("200ms") without mirror structs: it
// derives, once per type, a twin type in which every time.Duration is a
// duration (a TextUnmarshaler), decodes the file strictly into the twin, so
// that unknown keys and bad values are reported with their line, and
// copies the result back. Types without a time.Duration inside are used as
// they are.

// duration is time.Duration written as a string. It is a struct so that
// the decoder refuses a bare number (10 would be 10 ns).
type duration struct{ d time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a string with a unit, such as \"300ms\" or \"1.5s\"", b)
	}
	d.d = v
	return nil
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	twinDuration  = reflect.TypeFor[duration]()
	textUnmarshal = reflect.TypeFor[encoding.TextUnmarshaler]()
)

var (
	twins  sync.Map // reflect.Type → its twin
	fields sync.Map // pair{original struct, twin} → index in original of each twin field
)

type pair struct{ orig, twin reflect.Type }

// twinOf returns the twin of t: t itself when t holds no time.Duration
// that TOML would decode.
func twinOf(t reflect.Type) reflect.Type {
	if tw, ok := twins.Load(t); ok {
		return tw.(reflect.Type)
	}
	tw := t
	switch {
	case t == durationType:
		tw = twinDuration
	case reflect.PointerTo(t).Implements(textUnmarshal):
		// Decoded from text by the type itself.
	case t.Kind() == reflect.Pointer:
		tw = reflect.PointerTo(twinOf(t.Elem()))
	case t.Kind() == reflect.Slice:
		tw = reflect.SliceOf(twinOf(t.Elem()))
	case t.Kind() == reflect.Map:
		tw = reflect.MapOf(t.Key(), twinOf(t.Elem()))
	case t.Kind() == reflect.Struct:
		if st, changed := structTwin(t, false); changed {
			tw = st
		}
	}
	actual, _ := twins.LoadOrStore(t, tw)
	return actual.(reflect.Type)
}

// structTwin returns a struct type with t's decodable fields, twinned, and
// whether it differs from t; force makes a new type even if it would not.
func structTwin(t reflect.Type, force bool) (reflect.Type, bool) {
	var fs []reflect.StructField
	var index []int
	changed := false
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("toml") == "-" {
			// The file cannot reach it, and reflect.StructOf cannot make
			// unexported fields: the twin leaves it out.
			changed = true
			continue
		}
		ft := twinOf(f.Type)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			// reflect.StructOf cannot embed a type with methods (exported
			// or not) beside other fields: embed a copy without them, which
			// the decoder flattens all the same.
			ft, _ = structTwin(f.Type, true)
		}
		if ft != f.Type {
			changed = true
		}
		fs = append(fs, reflect.StructField{Name: f.Name, Type: ft, Tag: f.Tag, Anonymous: f.Anonymous})
		index = append(index, i)
	}
	if !changed && !force {
		return t, false
	}
	tw := reflect.StructOf(fs)
	fields.Store(pair{t, tw}, index)
	return tw, true
}

// copyValue copies src into dst, where one's type is the other's twin (or
// they are the same type). toTwin says which way.
func copyValue(dst, src reflect.Value, toTwin bool) {
	if dst.Type() == src.Type() {
		dst.Set(src)
		return
	}
	switch {
	case dst.Type() == twinDuration:
		dst.Addr().Interface().(*duration).d = time.Duration(src.Int())
		return
	case src.Type() == twinDuration:
		dst.SetInt(int64(src.Interface().(duration).d))
		return
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		dst.Set(reflect.New(dst.Type().Elem()))
		copyValue(dst.Elem(), src.Elem(), toTwin)
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		dst.Set(reflect.MakeSlice(dst.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			copyValue(dst.Index(i), src.Index(i), toTwin)
		}
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		dst.Set(reflect.MakeMapWithSize(dst.Type(), src.Len()))
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(dst.Type().Elem()).Elem()
			copyValue(v, it.Value(), toTwin)
			dst.SetMapIndex(it.Key(), v)
		}
	case reflect.Struct:
		orig, twin := dst, src
		if toTwin {
			orig, twin = src, dst
		}
		index, ok := fields.Load(pair{orig.Type(), twin.Type()})
		if !ok {
			panic(fmt.Sprintf("config: %v is not a twin of %v", twin.Type(), orig.Type()))
		}
		for i, fi := range index.([]int) {
			if toTwin {
				copyValue(twin.Field(i), orig.Field(fi), toTwin)
			} else {
				copyValue(orig.Field(fi), twin.Field(i), toTwin)
			}
		}
	default:
		panic(fmt.Sprintf("config: cannot copy %v into %v", src.Type(), dst.Type()))
	}
}

// decode decodes b strictly into *v, over the values v already holds. An
// error is ErrInvalid, with the line and column when the decoder knows
// them.
func decode(b []byte, v any) error {
	rv := reflect.ValueOf(v).Elem()
	target := rv
	if tw := twinOf(rv.Type()); tw != rv.Type() {
		target = reflect.New(tw).Elem()
		copyValue(target, rv, true)
	}
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(target.Addr().Interface()); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return fmt.Errorf("%w: %s", ErrInvalid, sme.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("%w: line %d column %d: %s", ErrInvalid, row, col, de.Error())
		}
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if target != rv {
		copyValue(rv, target, false)
	}
	return nil
}
