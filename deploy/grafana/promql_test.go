package grafana_test

import (
	"slices"
	"strings"
	"testing"
)

// promqlKeywords are PromQL words that are not metric names: binary
// operators, modifiers and aggregation operators (which may be followed by
// by or without rather than "("). Functions are recognised by the "("
// that follows them.
var promqlKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
}

// labelLists are the keywords followed by a parenthesised list of label
// names, not an expression.
var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// metricNames returns the metric names a PromQL expression selects, in
// order of appearance. It is a small lexer, not a parser (the module does
// not carry Prometheus's): it skips strings, label matchers ({…}), ranges
// and subqueries ([…]), label lists after by/without/on/ignoring/group_*,
// numbers and durations, and Grafana's $variables; an identifier followed
// by "(" is a function or an aggregation; any other identifier that is not
// a keyword is a metric name. A selector written only as {__name__="…"}
// is not seen: the dashboard does not use that form.
func metricNames(expr string) []string {
	var names []string
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipTo := func(i int, open, close byte) int { // i at open; returns the index after its close
		depth := 0
		for ; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				i = skipString(expr, i) - 1
			case c == open:
				depth++
			case c == close:
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			i = skipTo(i, '{', '}')
		case c == '[':
			i = skipTo(i, '[', ']')
		case c == '$' || c >= '0' && c <= '9' || c == '.':
			// A variable, a number or a duration: one word.
			for i++; i < len(expr) && (isPart(expr[i]) || expr[i] == '.'); i++ {
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\n' || expr[k] == '\t') {
				k++
			}
			switch {
			case labelLists[word] && k < len(expr) && expr[k] == '(':
				i = skipTo(k, '(', ')')
			case promqlKeywords[word] || k < len(expr) && expr[k] == '(':
				i = j
			default:
				names = append(names, word)
				i = j
			}
		default:
			i++
		}
	}
	return names
}

// skipString returns the index just after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			return j + 1
		}
	}
	return len(s)
}

// seriesSuffixes are what a histogram's (or summary's) series add to its
// family name.
var seriesSuffixes = []string{"_bucket", "_sum", "_count"}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`streamjoin_ready`, []string{"streamjoin_ready"}},
		{`sum by (topic, outcome) (rate(streamjoin_ingest_records_total{outcome!="skipped"}[$__rate_interval]))`, []string{"streamjoin_ingest_records_total"}},
		{`histogram_quantile(0.99, sum by (le, route) (rate(streamjoin_http_request_duration_seconds_bucket{route=~"/users.*"}[5m])))`, []string{"streamjoin_http_request_duration_seconds_bucket"}},
		{`sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > bool 0.5 and on (job) up offset 5m`, []string{"a_sum", "a_count", "up"}},
		{`max_over_time(foo{x="}{[("}[10m:30s]) or vector(0)`, []string{"foo"}},
		{`sum without (instance) (b) * on (topic) group_left (code) c`, []string{"b", "c"}},
		{`1e3 * d / 2.5`, []string{"d"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%s) = %v, want %v", strings.TrimSpace(tc.expr), got, tc.want)
		}
	}
}
