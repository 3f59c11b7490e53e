package event

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeFlat is the fast path of decoding: one scan of data, a JSON object
// that starts at data[0] and holds valid UTF-8, that both validates it as
// encoding/json's scanner does and picks out the fields named by names
// (lower-case ASCII, at most maxFlatFields, none equal to another under case
// folding). When it returns true, data is valid JSON and *dst[i] is what
// json.Unmarshal into a struct of *string fields tagged names[i] leaves: nil
// for null or absent, else the string, with keys matched case-insensitively,
// the last of duplicate keys winning, escapes decoded and a lone surrogate
// read as U+FFFD; the strings share one allocation, their pointees another.
// When it returns false, nothing is written and the caller must decode with
// encoding/json: decodeFlat refuses whatever it is not sure of (a syntax
// error, a known field that is not a string or null, a key that is not
// ASCII, nesting deeper than maxFlatDepth), so every rejection and its
// reason stay encoding/json's. FuzzFastJSONMatchesStd checks it against
// encoding/json.
func decodeFlat(data []byte, names []string, dst []**string) bool {
	var spans [maxFlatFields]flatSpan
	if len(names) > maxFlatFields || len(data) == 0 || data[0] != '{' {
		return false
	}
	next := 0 // the field most likely to come next: keys usually come in order
	i := skipSpace(data, 1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return false
			}
			keyEnd, keyEsc, ok := scanString(data, i)
			if !ok {
				return false
			}
			field, ok := matchKey(data[i+1:keyEnd-1], keyEsc, names, next)
			if !ok {
				return false
			}
			if field >= 0 {
				next = field + 1
			}
			i = skipSpace(data, keyEnd)
			if i >= len(data) || data[i] != ':' {
				return false
			}
			i = skipSpace(data, i+1)
			if i >= len(data) {
				return false
			}
			switch {
			case field < 0:
				if i, ok = skipValue(data, i); !ok {
					return false
				}
			case data[i] == '"':
				end, esc, ok := scanString(data, i)
				if !ok {
					return false
				}
				spans[field] = flatSpan{start: i + 1, end: end - 1, state: spanString}
				if esc {
					spans[field].state = spanEscaped
				}
				i = end
			case hasLiteral(data, i, "null"):
				spans[field] = flatSpan{state: spanNull}
				i += len("null")
			default: // a wrong type, or a syntax error: encoding/json names it
				return false
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return false
	}
	fillFlat(data, spans[:len(names)], dst)
	return true
}

const (
	maxFlatFields = 8
	maxFlatDepth  = 64 // containers nested in an unknown field's value
)

// flatSpan is where a known field's last value lies in the data: the bytes
// between a string's quotes, or null.
type flatSpan struct {
	start, end int
	state      uint8
}

const (
	spanAbsent uint8 = iota
	spanNull
	spanString
	spanEscaped // a string holding at least one escape
)

// fillFlat copies the strings of spans into one buffer, decoding escapes, and
// points dst at them.
func fillFlat(data []byte, spans []flatSpan, dst []**string) {
	n, count := 0, 0
	for _, s := range spans {
		if s.state >= spanString {
			n += s.end - s.start // a decoded escape is never longer than its source
			count++
		}
	}
	var b strings.Builder
	b.Grow(n)
	var ends [maxFlatFields]int
	for f, s := range spans {
		switch s.state {
		case spanString:
			b.Write(data[s.start:s.end])
		case spanEscaped:
			appendUnquoted(&b, data[s.start:s.end])
		}
		ends[f] = b.Len()
	}
	all := b.String()
	var strs []string
	if count > 0 {
		strs = make([]string, count)
	}
	start, k := 0, 0
	for f, s := range spans {
		if s.state < spanString {
			*dst[f] = nil
			continue
		}
		strs[k] = all[start:ends[f]]
		*dst[f] = &strs[k]
		start = ends[f]
		k++
	}
}

// matchKey returns the index in names of the key whose raw text (between the
// quotes) is raw, or -1 when it names no field; it tries names[hint] first.
// As encoding/json does, it matches case-insensitively. ok is false for a
// key that names no field and is not ASCII: encoding/json folds some
// non-ASCII letters to ASCII ones (U+212A KELVIN SIGN to k, U+017F LATIN
// SMALL LETTER LONG S to s, U+0130 and U+0131 to i), so it may name one.
func matchKey(raw []byte, escaped bool, names []string, hint int) (field int, ok bool) {
	if escaped { // rare: decode it aside
		var b strings.Builder
		appendUnquoted(&b, raw)
		return matchFold(b.String(), names, hint)
	}
	return matchFold(raw, names, hint)
}

func matchFold[T string | []byte](key T, names []string, hint int) (field int, ok bool) {
	if hint < len(names) && equalFoldASCII(key, names[hint]) {
		return hint, true
	}
	for f, name := range names {
		if equalFoldASCII(key, name) {
			return f, true
		}
	}
	for j := 0; j < len(key); j++ {
		if key[j] >= utf8.RuneSelf {
			return 0, false
		}
	}
	return -1, true
}

// equalFoldASCII reports whether key equals name, lower-case ASCII, with
// its upper-case ASCII letters made lower case.
func equalFoldASCII[T string | []byte](key T, name string) bool {
	if len(key) != len(name) {
		return false
	}
	if string(key) == name {
		return true
	}
	for j := 0; j < len(key); j++ {
		c := key[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[j] {
			return false
		}
	}
	return true
}

// appendUnquoted decodes the escapes of raw, the validated text between a
// JSON string's quotes, as encoding/json does: a surrogate pair is one
// rune, and a surrogate that is not part of a pair is U+FFFD.
func appendUnquoted(b *strings.Builder, raw []byte) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			b.Write(raw[i:j])
			i = j
			continue
		}
		switch raw[i+1] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if len(raw)-i >= 6 && raw[i] == '\\' && raw[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(raw[i+2:])); pair != utf8.RuneError {
						b.WriteRune(pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
			continue
		default: // '"', '\\', '/'
			b.WriteByte(raw[i+1])
		}
		i += 2
	}
}
