UPDATE restore_claims SET settled_at = now(), last_error = NULL, kept_herd_id = NULL, settled_how = $1
WHERE id = $2
