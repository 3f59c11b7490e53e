package produce

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in string
		want     []string
		wantErr  bool
	}{
		{name: "array", in: ` [ {"a":1}, {"b":"x"} ] `, want: []string{`{"a":1}`, `{"b":"x"}`}},
		{name: "empty array", in: `[]`, want: nil},
		{name: "ndjson", in: "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n", want: []string{`{"a":1}`, `{"a":2}`, `{"a":3}`}},
		{name: "concatenated", in: `{"a":1}{"a":2}`, want: []string{`{"a":1}`, `{"a":2}`}},
		{name: "empty input", in: "  \n", want: nil},
		{name: "broken array", in: `[{"a":1},`, wantErr: true},
		{name: "broken ndjson", in: "{\"a\":1}\n{\"a\":", wantErr: true},
		{name: "data after the array", in: `[{"a":1}] {"a":2}`, wantErr: true},
		{name: "bracket after the array", in: `[{"a":1}]]`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var gs []string
			for _, v := range got {
				gs = append(gs, string(v))
			}
			if diff := cmp.Diff(tt.want, gs); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	v := []byte(`{"id":"abc","n":42,"nul":null,"obj":{"x":1}}`)
	for field, want := range map[string]string{"id": "abc", "n": "42", "obj": `{"x":1}`, "nul": "", "missing": "", "": ""} {
		if got := string(Key(v, field)); got != want {
			t.Errorf("Key(%q) = %q, want %q", field, got, want)
		}
	}
	if Key([]byte(`[1]`), "id") != nil {
		t.Error("a non-object has no key")
	}
}

func TestMissingKey(t *testing.T) {
	t.Parallel()
	values := []json.RawMessage{
		json.RawMessage(`{"id":"a"}`),
		json.RawMessage(`{"other":"b"}`),
		json.RawMessage(`{"id":null}`),
		json.RawMessage(`[1]`),
		json.RawMessage(`{"id":7}`),
		json.RawMessage(`{"id":""}`),
	}
	for _, tt := range []struct {
		field string
		want  []int
	}{
		{"id", []int{1, 2, 3}},
		{"", nil},
		{"nope", []int{0, 1, 2, 3, 4, 5}},
	} {
		if diff := cmp.Diff(tt.want, MissingKey(values, tt.field)); diff != "" {
			t.Errorf("MissingKey(%q) (-want +got):\n%s", tt.field, diff)
		}
	}
}
