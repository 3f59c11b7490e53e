package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	`{"id":"a","event_type":"User Created","username":"x","user_email":"e","user_type":"Admin","organization_name":"o","received_at":"2020-12-08 20:03:16.759617"}`,
	`{"id":"a","event_type":"User Deleted","received_at":"2020-12-08T20:03:16Z"}`,
	`{"organization_key":"k","organization_name":"o","organization_tier":"gold","created_at":"2020-12-08 20:03:16"}`,
	`[1,2]`, `null`, `"s"`, `{`, `{"id":1}`, "\xff",
}

// checkDecoded holds for every input: no panic, and either a valid event
// whose text fields are valid UTF-8, or an *Error with a code and message.
func checkDecoded(t *testing.T, err error, texts ...*string) {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Code == "" || e.Msg == "" {
			t.Fatalf("error is not a coded *Error: %v", err)
		}
		if !utf8.ValidString(e.Error()) {
			t.Fatalf("reason is not UTF-8: %q", e.Error())
		}
		return
	}
	for _, s := range texts {
		if s != nil && !utf8.ValidString(*s) {
			t.Fatalf("decoded text is not UTF-8: %q", *s)
		}
	}
}

func FuzzDecodeUser(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	d := NewDecoder(0)
	f.Fuzz(func(t *testing.T, value []byte) {
		u, err := d.User(value, Position{})
		checkDecoded(t, err, &u.ID, u.Username, u.Email, u.UserType, u.OrganizationName)
		if err == nil {
			if u.ID == "" || u.ReceivedAt.IsZero() || (u.Type != UserDeleted && (u.Username == nil || *u.Username == "")) {
				t.Fatalf("accepted an invalid user event: %+v", u)
			}
			if !json.Valid(value) {
				t.Fatalf("accepted invalid JSON: %q", value)
			}
		}
	})
}

func FuzzDecodeOrg(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	d := NewDecoder(0)
	f.Fuzz(func(t *testing.T, value []byte) {
		o, err := d.Org(value, Position{})
		checkDecoded(t, err, &o.Name, o.Key, o.Tier)
		if err == nil && (o.Name == "" || o.CreatedAt.IsZero() || !json.Valid(value)) {
			t.Fatalf("accepted an invalid org event: %+v from %q", o, value)
		}
	})
}

// FuzzFastJSONMatchesStd is the differential test of the fast decoders:
// whatever encoding/json accepts, unmarshalJSON accepts and decodes to the
// same fields, and whatever it rejects, unmarshalJSON rejects; whatever
// decodeFlat decodes, encoding/json decodes to the same fields; and User and
// Org (decodeFlat, parseSeedTime, goccy) give the same event, or the same
// rejection code and reason, as encoding/json and time.Parse alone.
func FuzzFastJSONMatchesStd(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"id":"a","id":"b"}`,                        // duplicate keys: the last wins
		`{"ID":"a","Event_Type":"User Created"}`,     // keys match case-insensitively
		`{"id":"\u00e9\ud83d\ude00\u0000"}`,          // escapes, a surrogate pair, NUL
		`{"id":"\ud800"}`,                            // a lone surrogate
		`{"id":null,"username":null}`,                // nulls
		`{"id":1e999}`,                               // a number into a string field
		`{"id":"a","extra":{"deep":[1,{"x":[]}]}}`,   // unknown nested fields
		`{"id":"a"} `,                                // trailing space
		`{"id":"a"}{}`,                               // trailing data
		`{"id":"a",}`,                                // trailing comma
		"{\"id\":\"a\u2028b\"}",                      // a line separator
		`{"organization_name":"o","created_at":"x"}`, // org fields
		`{"id":"a","event_type":"User Created","username":"x","received_at":"2020-12-08 20:03:16"}`,
		`{"id":"a","id":null}`,                                   // a later null clears
		`{"id":null,"ID":"b","Id":"c"}`,                          // the last of several spellings wins
		`{"\u0069d":"a","\u0049D":"b"}`,                          // escaped keys
		`{"İd":"a","ıd":"b"}`,                                    // non-ASCII keys that fold to ASCII
		`{"organization_\u212aey":"k","organization_ſtier":"t"}`, // KELVIN SIGN, LONG S
		`{"id":"\ud800\ud800\udc00","username":"\udc00\ud800x"}`, // unpaired surrogates
		`{"id":"\ud83d\u0041","username":"\ud83d\\ude00"}`,       // a high surrogate before a non-surrogate
		`{"id":"\"\\\/\b\f\n\r\t\u00e9"}`,                        // every escape
		` { "id" : "a" , "x" : [ 1 , -0.5e+3 , true , false , null , { } , [ ] , "s" ] } `,
		`{"x":+1}`, `{"x":.5}`, `{"x":-0}`, `{"x":1E+2}`, `{"x":1e+}`, `{"x":0x1}`, `{"x":1.5e-3}`, `{"x":-01}`,
		`{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1e}`, `{"x":tru}`, `{"x":[1,]}`, `{"x":{"a"}}`, `{"x":{"a":1,}}`,
		`{"id":"a\x"}`, `{"id":"\u12"}`, "{\"id\":\"a\tb\"}", `{"id" "a"}`, `{,}`, `{"id":"a"`,
		`{"x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `,"id":"a"}`,
		`{"x":` + strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65) + `,"id":"a"}`,
	} {
		f.Add([]byte(s))
	}
	d, ref := NewDecoder(0), &Decoder{maxValueBytes: DefaultMaxValueBytes, reference: true}
	f.Fuzz(func(t *testing.T, value []byte) {
		checkFlat(t, value)
		u, errU := d.User(value, Position{})
		refU, errRefU := ref.User(value, Position{})
		if errText(errU) != errText(errRefU) || !reflect.DeepEqual(u, refU) {
			t.Fatalf("%q: User gives %s, %v; encoding/json alone %s, %v", value, show(u), errU, show(refU), errRefU)
		}
		o, errO := d.Org(value, Position{})
		refO, errRefO := ref.Org(value, Position{})
		if errText(errO) != errText(errRefO) || !reflect.DeepEqual(o, refO) {
			t.Fatalf("%q: Org gives %s, %v; encoding/json alone %s, %v", value, show(o), errO, show(refO), errRefO)
		}
		var stdU, fastU userJSON
		errStd, errFast := json.Unmarshal(value, &stdU), unmarshalJSON(value, &fastU)
		if (errStd == nil) != (errFast == nil) {
			t.Fatalf("%q: encoding/json err %v, fast err %v", value, errStd, errFast)
		}
		if errStd == nil && !reflect.DeepEqual(stdU, fastU) {
			t.Fatalf("%q: user fields differ:\nstd  %s\nfast %s", value, show(stdU), show(fastU))
		}
		var stdO, fastO orgJSON
		errStd, errFast = json.Unmarshal(value, &stdO), unmarshalJSON(value, &fastO)
		if (errStd == nil) != (errFast == nil) {
			t.Fatalf("%q: encoding/json err %v, fast err %v (org)", value, errStd, errFast)
		}
		if errStd == nil && !reflect.DeepEqual(stdO, fastO) {
			t.Fatalf("%q: org fields differ:\nstd  %s\nfast %s", value, show(stdO), show(fastO))
		}
	})
}

// checkFlat: whatever decodeFlat decodes, encoding/json accepts and decodes
// to the same fields.
func checkFlat(t *testing.T, value []byte) {
	if !utf8.Valid(value) { // decodeFlat's precondition
		return
	}
	object := bytes.TrimLeft(value, " \t\r\n")
	var flatU, stdU userJSON
	if decodeFlat(object, userFields[:], []**string{&flatU.ID, &flatU.EventType, &flatU.Username, &flatU.UserEmail, &flatU.UserType, &flatU.OrganizationName, &flatU.ReceivedAt}) {
		if err := json.Unmarshal(value, &stdU); err != nil {
			t.Fatalf("%q: decodeFlat accepts, encoding/json rejects: %v", value, err)
		}
		if !reflect.DeepEqual(flatU, stdU) {
			t.Fatalf("%q: user fields differ:\nstd  %s\nflat %s", value, show(stdU), show(flatU))
		}
	}
	var flatO, stdO orgJSON
	if decodeFlat(object, orgFields[:], []**string{&flatO.OrganizationKey, &flatO.OrganizationName, &flatO.OrganizationTier, &flatO.CreatedAt}) {
		if err := json.Unmarshal(value, &stdO); err != nil {
			t.Fatalf("%q: decodeFlat accepts, encoding/json rejects: %v (org)", value, err)
		}
		if !reflect.DeepEqual(flatO, stdO) {
			t.Fatalf("%q: org fields differ:\nstd  %s\nflat %s", value, show(stdO), show(flatO))
		}
	}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
