// Package dlq owns streamjoin's dead letters: their format (the headers the
// consumer adds to a rejected record), producing them in source order in
// Kafka transactions under one transactional id per source partition (so
// that a new owner fences every earlier producer), reading the last
// committed one of a partition back, and the `streamjoin dlq list` and
// `streamjoin dlq replay` commands' reading and replaying. Every read is
// read_committed.
//
// A dead letter is the original record (key, value, headers) with these
// headers added: HeaderError, HeaderErrorCode and the source topic,
// partition and offset. The dead letters of source partition p go to
// dead-letter partition p, in source offset order.
package dlq

import (
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamjoin/streamjoin/internal/event"
)

// Dead-letter headers.
const (
	HeaderError           = "streamjoin.error"
	HeaderErrorCode       = "streamjoin.error.code"
	HeaderSourceTopic     = "streamjoin.source.topic"
	HeaderSourcePartition = "streamjoin.source.partition"
	HeaderSourceOffset    = "streamjoin.source.offset"
)

// Partition names a Kafka partition.
type Partition struct {
	Topic     string
	Partition int32
}

// Source is where a dead letter's record was read from.
type Source struct {
	Partition
	Offset int64
}

// Build returns the dead letter of r for topic: r's key, value, headers and
// timestamp, plus the reason (cause's text and, for an *event.Error, its
// code; "unknown" otherwise) and r's coordinates. It goes to the partition
// of r's number.
func Build(r *kgo.Record, topic string, cause error) *kgo.Record {
	code := "unknown"
	var ee *event.Error
	if errors.As(cause, &ee) {
		code = string(ee.Code)
	}
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+5)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderErrorCode, Value: []byte(code)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{
		Topic:     topic,
		Partition: r.Partition,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   headers,
		Timestamp: r.Timestamp,
	}
}

// SourceOf reads a dead letter's source coordinates from its headers; ok is
// false when any of them is missing or malformed (not written by Build).
func SourceOf(d *kgo.Record) (src Source, ok bool) {
	topic := Header(d, HeaderSourceTopic)
	p, err1 := strconv.ParseInt(Header(d, HeaderSourcePartition), 10, 32)
	off, err2 := strconv.ParseInt(Header(d, HeaderSourceOffset), 10, 64)
	if topic == "" || err1 != nil || err2 != nil {
		return Source{}, false
	}
	return Source{Partition{topic, int32(p)}, off}, true
}

// Header returns the value of r's last header named key, or "".
func Header(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

func parse(r *kgo.Record) *Letter {
	l := &Letter{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderError:
			l.Reason = string(h.Value)
		case HeaderErrorCode:
			l.Code = string(h.Value)
		case HeaderSourceTopic:
			l.SourceTopic = string(h.Value)
		case HeaderSourcePartition:
			p, _ := strconv.ParseInt(string(h.Value), 10, 32)
			l.SourcePartition = int32(p)
		case HeaderSourceOffset:
			l.SourceOffset, _ = strconv.ParseInt(string(h.Value), 10, 64)
		default:
			l.Headers = append(l.Headers, h)
		}
	}
	return l
}
