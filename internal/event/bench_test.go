package event

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkDecodeUser(b *testing.B) {
	v := []byte(`{"id":"069feb770fe581acc9d3313d59780196","event_type":"User Created","username":"Snake","user_email":"snake@outerheaven.com","user_type":"Admin","organization_name":"Metal Gear Solid","received_at":"2020-12-08 20:03:16.759617"}`)
	d := NewDecoder(0)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.User(v, Position{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLatestUsers(b *testing.B) {
	events := make([]User, 5000)
	for i := range events {
		events[i] = User{ID: fmt.Sprintf("user-%d", i%3000), Type: UserUpdated, ReceivedAt: base.Add(time.Duration(i%97) * time.Second), Pos: Position{Partition: int32(i % 6), Offset: int64(i)}}
	}
	b.ReportAllocs()
	for b.Loop() {
		LatestUsers(events)
	}
}
