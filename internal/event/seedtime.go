package event

import "time"

// parseSeedTime is the fast path of parseTime for the seed's form, the one
// nearly every record uses: exactly "YYYY-MM-DD HH:MM:SS", optionally
// followed by '.' and 1 to 9 fraction digits, every field in range. For such
// s it returns what time.Parse(timeLayouts[0], s) followed by
// UTC().Truncate(time.Microsecond) returns. For anything else (another
// layout, a one-digit hour, a comma, more than 9 fraction digits, a day past
// the month's end) ok is false and the caller falls back to time.Parse, so
// the fast path never decides a rejection. FuzzSeedTimeMatchesParse checks
// it against time.Parse.
func parseSeedTime(s string) (t time.Time, ok bool) {
	if len(s) < 19 || len(s) == 20 || len(s) > 29 ||
		s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	y1, ok1 := digits2(s, 0)
	y2, ok2 := digits2(s, 2)
	month, ok3 := digits2(s, 5)
	day, ok4 := digits2(s, 8)
	hour, ok5 := digits2(s, 11)
	minute, ok6 := digits2(s, 14)
	sec, ok7 := digits2(s, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return time.Time{}, false
	}
	year := y1*100 + y2
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if len(s) > 19 {
		if s[19] != '.' {
			return time.Time{}, false
		}
		scale := 1_000_000_000
		for i := 20; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			scale /= 10
			nsec += int(c-'0') * scale
		}
		nsec -= nsec % 1000 // truncate to microseconds
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// digits2 parses the two decimal digits at s[i:i+2].
func digits2(s string, i int) (int, bool) {
	a, b := s[i]-'0', s[i+1]-'0'
	if a > 9 || b > 9 {
		return 0, false
	}
	return int(a)*10 + int(b), true
}

// daysIn is the number of days in month of the proleptic Gregorian year,
// as the time package counts them.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
