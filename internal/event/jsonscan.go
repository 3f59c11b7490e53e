package event

import "encoding/binary"

// This file is the JSON grammar as encoding/json's scanner accepts it, for
// decodeFlat: each function validates one construct and returns where it
// ends.

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasLiteral(data []byte, i int, lit string) bool {
	return len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit
}

// scanString validates the JSON string that starts with the quote at
// data[i] and returns the index just past its closing quote, and whether it
// holds an escape.
func scanString(data []byte, i int) (end int, escaped, ok bool) {
	for i++; i < len(data); i++ {
		// Skip eight plain bytes at a time; a word that may hold a special
		// one (the test has false positives, never false negatives) is
		// looked at byte by byte.
		for len(data)-i >= 8 && !mayHoldSpecial(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		if i >= len(data) {
			break
		}
		if !stringSpecial[data[i]] {
			continue
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				return 0, false, false
			}
			i++
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-i < 5 || hex4(data[i+1:i+5]) < 0 {
					return 0, false, false
				}
				i += 4
			default:
				return 0, false, false
			}
		case c < ' ':
			return 0, false, false
		}
	}
	return 0, false, false
}

// stringSpecial marks the bytes that end a run of plain string contents: a
// quote, a backslash, and the control characters JSON forbids there.
var stringSpecial = func() (t [256]bool) {
	for c := range ' ' {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// mayHoldSpecial reports whether one of the eight bytes of w may be a quote,
// a backslash or a control character. It never misses one.
func mayHoldSpecial(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	return ((w-ones*' ')|(quote-ones)|(backslash-ones))&^w&highs != 0
}

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// skipValue validates the JSON value that starts at data[i] (not
// whitespace) and returns the index just past it. Containers may nest
// maxFlatDepth deep; deeper ones are left to encoding/json.
func skipValue(data []byte, i int) (int, bool) {
	var objects uint64 // bit d: the container at depth d is an object
	depth := 0
	for {
		// i is at the start of a value.
		if i >= len(data) {
			return 0, false
		}
		ok := true
		switch c := data[i]; {
		case c == '"':
			i, _, ok = scanString(data, i)
		case c == '{' || c == '[':
			if depth == maxFlatDepth {
				return 0, false
			}
			i = skipSpace(data, i+1)
			if c == '{' && i < len(data) && data[i] == '}' || c == '[' && i < len(data) && data[i] == ']' {
				i++
				break
			}
			if c == '{' {
				objects |= 1 << depth
				depth++
				if i, ok = skipKey(data, i); !ok {
					return 0, false
				}
			} else {
				objects &^= 1 << depth
				depth++
			}
			continue
		case c == 't':
			ok = hasLiteral(data, i, "true")
			i += len("true")
		case c == 'f':
			ok = hasLiteral(data, i, "false")
			i += len("false")
		case c == 'n':
			ok = hasLiteral(data, i, "null")
			i += len("null")
		default:
			i, ok = scanNumber(data, i)
		}
		if !ok {
			return 0, false
		}
		// A value ended: close containers, or go on to the next element.
		for {
			if depth == 0 {
				return i, true
			}
			i = skipSpace(data, i)
			if i >= len(data) {
				return 0, false
			}
			object := objects>>(depth-1)&1 == 1
			if c := data[i]; c == ',' {
				i = skipSpace(data, i+1)
				if object {
					if i, ok = skipKey(data, i); !ok {
						return 0, false
					}
				}
				break
			} else if object && c == '}' || !object && c == ']' {
				i++
				depth--
				continue
			}
			return 0, false
		}
	}
}

// skipKey validates `"key" :` at data[i] and returns the index of the value
// after it.
func skipKey(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	i, _, ok := scanString(data, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return 0, false
	}
	return skipSpace(data, i+1), true
}

// scanNumber validates the JSON number at data[i] and returns the index
// just past it.
func scanNumber(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return 0, false
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}
