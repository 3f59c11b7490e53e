-- Leave a third of each users page free, so that an update (most events
-- update a user that exists) can stay on its page as a HOT update: no new
-- entries in users_pkey and users_username_live_idx, and lookups don't walk
-- dead index entries until vacuum. It applies to pages written from now on.
ALTER TABLE users SET (fillfactor = 70);
