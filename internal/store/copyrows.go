package store

import (
	"github.com/jackc/pgx/v5"

	"github.com/streamjoin/streamjoin/internal/event"
)

// The COPY column lists and row sources of the batch writer: the raw logs
// get every event as it arrived; the staging tables get the newest event per
// key (event.LatestUsers, event.LatestOrgs).
var (
	userEventCols = []string{"topic", "partition", "offset", "id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "kafka_timestamp"}
	orgEventCols  = []string{"topic", "partition", "offset", "organization_key", "organization_name", "organization_tier", "created_at", "kafka_timestamp"}
	stageUserCols = []string{"id", "event_type", "username", "user_email", "user_type", "organization_name", "received_at", "source_partition", "source_offset"}
	stageOrgCols  = []string{"organization_name", "organization_key", "organization_tier", "created_at", "source_partition", "source_offset"}
)

func userEventRows(topic string, us []event.User) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(us), func(i int) ([]any, error) {
		u := &us[i]
		return []any{topic, u.Pos.Partition, u.Pos.Offset, u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.LogTime}, nil
	})
}

func stageUserRows(us []event.User) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(us), func(i int) ([]any, error) {
		u := &us[i]
		return []any{u.ID, u.Type.String(), u.Username, u.Email, u.UserType, u.OrganizationName, u.ReceivedAt, u.Pos.Partition, u.Pos.Offset}, nil
	})
}

func orgEventRows(topic string, os []event.Org) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(os), func(i int) ([]any, error) {
		o := &os[i]
		return []any{topic, o.Pos.Partition, o.Pos.Offset, o.Key, o.Name, o.Tier, o.CreatedAt, o.LogTime}, nil
	})
}

func stageOrgRows(os []event.Org) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(os), func(i int) ([]any, error) {
		o := &os[i]
		return []any{o.Name, o.Key, o.Tier, o.CreatedAt, o.Pos.Partition, o.Pos.Offset}, nil
	})
}
