package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The API's browsing reads: one user by id, an organization's users a page
// at a time, organizations. Like UsersByName they go through the read pool
// and are bounded by the query timeout. Pages are keyset-paginated: the
// caller passes the last key of the previous page ("" for the first page)
// and gets up to limit rows after it; no OFFSET, so a deep page costs what
// the first one does (TestPageCostDoesNotGrowWithDepth).

var (
	sqlUserByID    = query("user_by_id")
	sqlUsersByOrg  = query("users_by_org")
	sqlOrgByName   = query("org_by_name")
	sqlOrgsPage    = query("orgs_page")
	sqlUserHistory = query("user_history")
)

// User is one users row, deleted or not. A deleted user keeps the fields
// it last had; one deleted before any other event of it was written has
// none (a null username).
type User struct {
	ID               string    `json:"id"`
	Username         *string   `json:"username"`
	UserEmail        *string   `json:"user_email"`
	UserType         *string   `json:"user_type"`
	OrganizationName *string   `json:"organization_name"`
	OrganizationTier *string   `json:"organization_tier"`
	ReceivedAt       time.Time `json:"received_at"`
	Deleted          bool      `json:"deleted"`
}

// Organization is one organizations row.
type Organization struct {
	Name      string    `json:"organization_name"`
	Key       *string   `json:"organization_key"`
	Tier      *string   `json:"organization_tier"`
	CreatedAt time.Time `json:"created_at"`
}

// OrganizationInfo is an Organization with its count of live users.
type OrganizationInfo struct {
	Organization
	LiveUsers int64 `json:"live_users"`
}

// UserByID returns the user with id, deleted or not; found is false when no
// event ever named it.
func (s *Store) UserByID(ctx context.Context, id string) (u User, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	err = s.read.QueryRow(ctx, sqlUserByID, id).Scan(&u.ID, &u.Username, &u.UserEmail, &u.UserType, &u.OrganizationName, &u.OrganizationTier, &u.ReceivedAt, &u.Deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, false, nil
	}
	if err != nil {
		return User{}, false, fmt.Errorf("reading user by id: %w", err)
	}
	u.ReceivedAt = u.ReceivedAt.UTC()
	return u, true, nil
}

// UsersByOrganization returns up to limit live users of organization org
// whose id sorts after afterID ("" for the first page), ordered by id.
func (s *Store) UsersByOrganization(ctx context.Context, org, afterID string, limit int) ([]Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.read.Query(ctx, sqlUsersByOrg, org, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("querying users by organization: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanProfile)
	if err != nil {
		return nil, fmt.Errorf("reading users by organization: %w", err)
	}
	return out, nil
}

// OrganizationByName returns the organization name and its count of live
// users; found is false when no event ever named it. Users of an
// organization that has not arrived yet are not counted anywhere.
func (s *Store) OrganizationByName(ctx context.Context, name string) (o OrganizationInfo, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	err = s.read.QueryRow(ctx, sqlOrgByName, name).Scan(&o.Name, &o.Key, &o.Tier, &o.CreatedAt, &o.LiveUsers)
	if errors.Is(err, pgx.ErrNoRows) {
		return OrganizationInfo{}, false, nil
	}
	if err != nil {
		return OrganizationInfo{}, false, fmt.Errorf("reading organization: %w", err)
	}
	o.CreatedAt = o.CreatedAt.UTC()
	return o, true, nil
}

// Organizations returns up to limit organizations whose name sorts after
// afterName ("" for the first page), ordered by name.
func (s *Store) Organizations(ctx context.Context, afterName string, limit int) ([]Organization, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	rows, err := s.read.Query(ctx, sqlOrgsPage, afterName, limit)
	if err != nil {
		return nil, fmt.Errorf("querying organizations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Organization, error) {
		var o Organization
		err := row.Scan(&o.Name, &o.Key, &o.Tier, &o.CreatedAt)
		o.CreatedAt = o.CreatedAt.UTC()
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading organizations: %w", err)
	}
	return out, nil
}
