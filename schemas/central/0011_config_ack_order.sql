-- 0011_config_ack_order.sql: configuration acks count in version order, not arrival order.
--
-- An edge that gets versions 2 and 3 in quick succession acks both; the two acks run on
-- different pool connections and may commit in either order. Applying the older one last
-- left applied_version behind desired_version, so the node showed drift until the next
-- push. Only an ack at or above the highest one seen so far changes the node now.

ALTER TABLE nodes ADD COLUMN acked_version bigint NOT NULL DEFAULT 0;
UPDATE nodes SET acked_version = applied_version;

CREATE OR REPLACE FUNCTION uplink_config_ack(nid uuid, v bigint, ok boolean, err text) RETURNS void
LANGUAGE sql AS $$
	UPDATE nodes SET acked_version = v,
		applied_version = CASE WHEN ok THEN v ELSE applied_version END,
		applied_at = CASE WHEN ok THEN now() ELSE applied_at END,
		apply_error = CASE WHEN ok THEN '' ELSE coalesce(err, 'refused') END
	WHERE id = nid AND v >= acked_version $$;
