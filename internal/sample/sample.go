// Package sample holds the dataset `streamjoin dev --sample` loads: events in
// the seed's shape that exercise every rule of the event contract. The
// comments say what each group of events demonstrates; sample_test.go checks
// the outcome through the running pipeline.
package sample

import "encoding/json"

// UserEvents are the user_events values, in the order they are produced.
var UserEvents = []json.RawMessage{
	// Created, then updated: the newest event wins.
	json.RawMessage(`{"id":"u-ripley","event_type":"User Created","username":"Ripley","user_email":"ripley@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 10:00:00.000001"}`),
	json.RawMessage(`{"id":"u-ripley","event_type":"User Updated","username":"Ripley","user_email":"ripley@nostromo.space","user_type":"Admin","organization_name":"Nostromo","received_at":"2021-03-02 10:00:00.000001"}`),
	// The delete arrives before the create; the user stays deleted.
	json.RawMessage(`{"id":"u-dallas","event_type":"User Deleted","username":null,"user_email":null,"user_type":null,"organization_name":null,"received_at":"2021-03-03 09:00:00"}`),
	json.RawMessage(`{"id":"u-dallas","event_type":"User Created","username":"Dallas","user_email":"dallas@nostromo.space","user_type":"Admin","organization_name":"Nostromo","received_at":"2021-03-01 09:00:00"}`),
	// Deleted, then an older create arrives late: it must not resurrect.
	json.RawMessage(`{"id":"u-kane","event_type":"User Created","username":"Kane","user_email":"kane@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 11:00:00"}`),
	json.RawMessage(`{"id":"u-kane","event_type":"User Deleted","username":"Kane","user_email":"kane@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-02 11:00:00"}`),
	json.RawMessage(`{"id":"u-kane","event_type":"User Created","username":"Kane","user_email":"kane@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-02-28 11:00:00"}`),
	// Deleted, then created again later: the newer create brings it back.
	json.RawMessage(`{"id":"u-lambert","event_type":"User Created","username":"Lambert","user_email":"lambert@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 12:00:00"}`),
	json.RawMessage(`{"id":"u-lambert","event_type":"User Deleted","username":"Lambert","user_email":"lambert@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-02 12:00:00"}`),
	json.RawMessage(`{"id":"u-lambert","event_type":"User Created","username":"Lambert","user_email":"lambert@sulaco.space","user_type":"Creator","organization_name":"Sulaco","received_at":"2021-03-04 12:00:00"}`),
	// An update for an id never seen: an upsert.
	json.RawMessage(`{"id":"u-hicks","event_type":"User Updated","username":"Hicks","user_email":"hicks@sulaco.space","user_type":"User","organization_name":"Sulaco","received_at":"2021-03-05 08:00:00"}`),
	// Two users share a name: both are returned.
	json.RawMessage(`{"id":"u-bishop-341","event_type":"User Created","username":"Bishop","user_email":"bishop@sulaco.space","user_type":"Creator","organization_name":"Sulaco","received_at":"2021-03-01 13:00:00"}`),
	json.RawMessage(`{"id":"u-bishop-ash","event_type":"User Created","username":"Bishop","user_email":"ash@nostromo.space","user_type":"Admin","organization_name":"Nostromo","received_at":"2021-03-01 13:30:00"}`),
	// A duplicated event is applied once.
	json.RawMessage(`{"id":"u-hudson","event_type":"User Created","username":"Hudson","user_email":"hudson@sulaco.space","user_type":"User","organization_name":"Sulaco","received_at":"2021-03-01 14:00:00"}`),
	json.RawMessage(`{"id":"u-hudson","event_type":"User Created","username":"Hudson","user_email":"hudson@sulaco.space","user_type":"User","organization_name":"Sulaco","received_at":"2021-03-01 14:00:00"}`),
	// Equal times: Updated beats Created, whatever the arrival order.
	json.RawMessage(`{"id":"u-vasquez","event_type":"User Updated","username":"Vasquez","user_email":"vasquez@sulaco.space","user_type":"Admin","organization_name":"Sulaco","received_at":"2021-03-01 15:00:00"}`),
	json.RawMessage(`{"id":"u-vasquez","event_type":"User Created","username":"Vasquez","user_email":"vasquez@sulaco.space","user_type":"User","organization_name":"Sulaco","received_at":"2021-03-01 15:00:00"}`),
	// Out of order updates: the late, older one loses.
	json.RawMessage(`{"id":"u-naomi","event_type":"User Created","username":"Naomi Nagata","user_email":"naomi@rocinante.space","user_type":"User","organization_name":"Rocinante","received_at":"2021-03-01 16:00:00"}`),
	json.RawMessage(`{"id":"u-naomi","event_type":"User Updated","username":"Naomi Nagata","user_email":"naomi@rocinante.space","user_type":"Creator","organization_name":"Rocinante","received_at":"2021-03-05 16:00:00"}`),
	json.RawMessage(`{"id":"u-naomi","event_type":"User Updated","username":"Naomi Nagata","user_email":"naomi@rocinante.space","user_type":"Admin","organization_name":"Rocinante","received_at":"2021-03-03 16:00:00"}`),
	// RFC 3339 with a zone; its organization arrives after the user.
	json.RawMessage(`{"id":"u-holden","event_type":"User Created","username":"Holden","user_email":"holden@rocinante.space","user_type":"Admin","organization_name":"Rocinante","received_at":"2021-03-01T18:00:00+02:00"}`),
	// An organization that never arrives: the tier stays null.
	json.RawMessage(`{"id":"u-mal","event_type":"User Created","username":"Mal","user_email":"mal@serenity.space","user_type":"Admin","organization_name":"Serenity","received_at":"2021-03-01 17:00:00"}`),
	// Unicode and quotes in names.
	json.RawMessage(`{"id":"u-zoe","event_type":"User Created","username":"Zoë Washburne","user_email":"zoe@serenity.space","user_type":"User","organization_name":"Serenity","received_at":"2021-03-01 17:30:00"}`),
	json.RawMessage(`{"id":"u-oneil","event_type":"User Created","username":"O'Neil 100%","user_email":"oneil@sulaco.space","user_type":"User","organization_name":"Sulaco","received_at":"2021-03-01 18:30:00"}`),
	// Invalid records: each goes to user_events.dlq with its reason.
	json.RawMessage(`{"id":"u-empty","event_type":"User Created","username":"","user_email":"","user_type":"","organization_name":"Nostromo","received_at":"2021-03-01 19:00:00"}`),
	json.RawMessage(`{"id":"u-null","event_type":"User Created","username":null,"user_email":"x@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 19:00:00"}`),
	json.RawMessage(`{"id":"u-renamed","event_type":"User Renamed","username":"Parker","user_email":"parker@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 19:00:00"}`),
	json.RawMessage(`{"id":"u-when","event_type":"User Created","username":"Brett","user_email":"brett@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"yesterday"}`),
	json.RawMessage(`{"event_type":"User Created","username":"Nobody","user_email":"nobody@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 19:00:00"}`),
	json.RawMessage(`{"id":"u-number","event_type":"User Created","username":42,"user_email":"n@nostromo.space","user_type":"User","organization_name":"Nostromo","received_at":"2021-03-01 19:00:00"}`),
	json.RawMessage(`["not", "an", "object"]`),
}

// OrgEvents are the org_events values, in the order they are produced.
var OrgEvents = []json.RawMessage{
	json.RawMessage(`{"organization_key":"org-nostromo","organization_name":"Nostromo","organization_tier":"gold","created_at":"2021-01-01 00:00:00"}`),
	// The tier changes; an older event arriving late does not undo it.
	json.RawMessage(`{"organization_key":"org-sulaco","organization_name":"Sulaco","organization_tier":"silver","created_at":"2021-01-01 00:00:00"}`),
	json.RawMessage(`{"organization_key":"org-sulaco","organization_name":"Sulaco","organization_tier":"platinum","created_at":"2021-02-01 00:00:00"}`),
	json.RawMessage(`{"organization_key":"org-sulaco","organization_name":"Sulaco","organization_tier":"bronze","created_at":"2020-12-01 00:00:00"}`),
	json.RawMessage(`{"organization_key":"org-rocinante","organization_name":"Rocinante","organization_tier":"gold","created_at":"2021-04-01T00:00:00Z"}`),
	// Invalid organization events.
	json.RawMessage(`{"organization_key":"org-nameless","organization_tier":"gold","created_at":"2021-01-01 00:00:00"}`),
	json.RawMessage(`{"organization_key":"org-bad-time","organization_name":"Galactica","organization_tier":"gold","created_at":"2021-13-45 25:61:00"}`),
}

// InvalidUserEvents and InvalidOrgEvents count the invalid records above.
const (
	InvalidUserEvents = 7
	InvalidOrgEvents  = 2
)
