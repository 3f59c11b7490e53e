package event

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decodeFlat decodes the common shapes itself, exactly as encoding/json
// does, and refuses (leaving encoding/json to decide and explain) what it
// is not sure of.
func TestDecodeFlat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		handled     bool
	}{
		{"seed create", `{"id":"069f","event_type":"User Created","username":"Snake","user_email":"snake@outerheaven.com","user_type":"Admin","organization_name":"Metal Gear Solid","received_at":"2020-12-08 20:03:16.759617"}`, true},
		{"nulls", `{"id":"a","event_type":"User Deleted","username":null,"user_email":null,"received_at":"2020-12-08 20:03:16"}`, true},
		{"empty object", `{}`, true},
		{"whitespace", " {\t\"id\" :\n\"a\" ,\r\"username\": null } \n", true},
		{"case-insensitive keys", `{"ID":"a","Event_Type":"User Created","USERNAME":"x"}`, true},
		{"duplicates: the last wins", `{"id":"a","username":"x","id":"b","username":null}`, true},
		{"escaped key", `{"\u0069d":"a"}`, true},
		{"escapes", `{"id":"\"\\\/\b\f\n\r\t\u00e9\u0000"}`, true},
		{"surrogate pair", `{"id":"\ud83d\ude00"}`, true},
		{"lone surrogates", `{"id":"\ud800","username":"\udc00\ud800\ud800\udc00x"}`, true},
		{"unknown fields of every type", `{"a":1,"b":-0.5e+10,"c":true,"d":false,"e":null,"f":"s","g":{},"h":[],"i":{"j":[1,{"k":[{}]}]},"id":"a"}`, true},
		{"nesting at the limit", `{"x":` + strings.Repeat("[", maxFlatDepth) + strings.Repeat("]", maxFlatDepth) + `}`, true},
		{"non-ASCII key", `{"İd":"a"}`, false},
		{"KELVIN SIGN key", `{"organization_\u212aey":"k"}`, false},
		{"number in a known field", `{"id":7}`, false},
		{"object in a known field", `{"user_email":{}}`, false},
		{"boolean in a known field", `{"username":true}`, false},
		{"nesting over the limit", `{"x":` + strings.Repeat("[", maxFlatDepth+1) + strings.Repeat("]", maxFlatDepth+1) + `}`, false},
		{"truncated", `{"id":"a"`, false},
		{"trailing comma", `{"id":"a",}`, false},
		{"trailing data", `{"id":"a"}x`, false},
		{"control character", "{\"id\":\"a\tb\"}", false},
		{"bad escape", `{"id":"\x"}`, false},
		{"short \\u", `{"id":"\u12"}`, false},
		{"leading zero", `{"x":01}`, false},
		{"bad literal", `{"x":nul}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var flat userJSON
			fields := []**string{&flat.ID, &flat.EventType, &flat.Username, &flat.UserEmail, &flat.UserType, &flat.OrganizationName, &flat.ReceivedAt}
			object := []byte(strings.TrimLeft(tc.value, " \t\r\n"))
			if got := decodeFlat(object, userFields[:], fields); got != tc.handled {
				t.Fatalf("handled = %v, want %v", got, tc.handled)
			}
			if !tc.handled {
				return
			}
			var std userJSON
			if err := json.Unmarshal([]byte(tc.value), &std); err != nil {
				t.Fatalf("encoding/json rejects it: %v", err)
			}
			if !reflect.DeepEqual(flat, std) {
				t.Errorf("fields differ:\nstd  %s\nflat %s", show(std), show(flat))
			}
		})
	}
}

// A valid record costs two allocations: its strings, and their pointees.
func TestDecodeUserAllocs(t *testing.T) {
	v := []byte(`{"id":"069f","event_type":"User Created","username":"Snake","user_email":"snake@outerheaven.com","user_type":"Admin","organization_name":"Metal Gear Solid","received_at":"2020-12-08 20:03:16.759617"}`)
	d := NewDecoder(0)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.User(v, Position{}); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("User allocates %v times per record, want at most 2", n)
	}
}

// mayHoldSpecial never misses a quote, backslash or control character,
// whatever byte it sits in and whatever bytes surround it; and it passes a
// word of plain bytes.
func TestMayHoldSpecial(t *testing.T) {
	t.Parallel()
	for special := range 256 {
		if !stringSpecial[special] {
			continue
		}
		for pos := range 8 {
			for filler := range 256 {
				var w [8]byte
				for j := range w {
					w[j] = byte(filler)
				}
				w[pos] = byte(special)
				if !mayHoldSpecial(binary.LittleEndian.Uint64(w[:])) {
					t.Fatalf("missed %#x at byte %d among %#x", special, pos, filler)
				}
			}
		}
	}
	if mayHoldSpecial(binary.LittleEndian.Uint64([]byte("snake@ou"))) {
		t.Error("flags a word of plain bytes")
	}
}
