-- The tables of schema version 20 (postgresql), as journey-engine made them before schema 21:
-- a database the previous release created, for tests/stores/test_schema_21.py and test_schema_version.py to migrate.

CREATE TABLE consents (
	id SERIAL NOT NULL, 
	user_id VARCHAR NOT NULL, 
	seq INTEGER NOT NULL, 
	channel VARCHAR NOT NULL, 
	category VARCHAR NOT NULL, 
	granted BOOLEAN NOT NULL, 
	source VARCHAR, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_consents_user_id ON consents (user_id);

CREATE TABLE erasures (
	id SERIAL NOT NULL, 
	user_id VARCHAR NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	phone_sha256 VARCHAR, 
	email_sha256 VARCHAR, 
	consents_through INTEGER, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_erasures_user_id ON erasures (user_id);

CREATE TABLE event_ids (
	id VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE feed_states (
	message_id VARCHAR NOT NULL, 
	user_id VARCHAR NOT NULL, 
	seen_at TIMESTAMP WITH TIME ZONE, 
	read_at TIMESTAMP WITH TIME ZONE, 
	archived_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (message_id)
);

CREATE INDEX ix_feed_states_user_id ON feed_states (user_id);

CREATE TABLE inbox (
	seq BIGSERIAL NOT NULL, 
	event_id VARCHAR, 
	user_id VARCHAR NOT NULL, 
	type VARCHAR NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	properties JSON NOT NULL, 
	error VARCHAR, 
	part INTEGER NOT NULL, 
	PRIMARY KEY (seq)
);

CREATE TABLE instances (
	instance_id VARCHAR NOT NULL, 
	journey_id VARCHAR NOT NULL, 
	version VARCHAR NOT NULL, 
	user_id VARCHAR NOT NULL, 
	key VARCHAR, 
	status VARCHAR NOT NULL, 
	step VARCHAR, 
	entered_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	doc JSON NOT NULL, 
	PRIMARY KEY (instance_id)
);

CREATE INDEX ix_instances_journey ON instances (journey_id);

CREATE INDEX ix_instances_user ON instances (user_id);

CREATE TABLE journey_counters (
	journey_id VARCHAR NOT NULL, 
	hour VARCHAR NOT NULL, 
	version VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	writer VARCHAR NOT NULL, 
	value FLOAT NOT NULL, 
	PRIMARY KEY (journey_id, hour, version, path, name, writer)
);

CREATE TABLE journey_states (
	journey_id VARCHAR NOT NULL, 
	state VARCHAR NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (journey_id)
);

CREATE TABLE journey_versions (
	journey_id VARCHAR NOT NULL, 
	version VARCHAR NOT NULL, 
	file VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	first_loaded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	templates JSON, 
	PRIMARY KEY (journey_id, version)
);

CREATE TABLE links (
	code VARCHAR NOT NULL, 
	message_id VARCHAR NOT NULL, 
	user_id VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	url VARCHAR, 
	position INTEGER NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	hits INTEGER NOT NULL, 
	machine_hits INTEGER NOT NULL, 
	first_hit_at TIMESTAMP WITH TIME ZONE, 
	last_hit_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (code)
);

CREATE INDEX ix_links_message ON links (message_id);

CREATE INDEX ix_links_user ON links (user_id);

CREATE TABLE messages (
	message_id VARCHAR NOT NULL, 
	instance_id VARCHAR, 
	journey_id VARCHAR, 
	user_id VARCHAR NOT NULL, 
	step VARCHAR, 
	message VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	category VARCHAR NOT NULL, 
	content JSON NOT NULL, 
	cost FLOAT NOT NULL, 
	encoding VARCHAR, 
	segments INTEGER, 
	decisions JSON NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	locale VARCHAR, 
	status VARCHAR NOT NULL, 
	status_at TIMESTAMP WITH TIME ZONE, 
	dispatch VARCHAR NOT NULL, 
	next_attempt_at TIMESTAMP WITH TIME ZONE, 
	attempts INTEGER NOT NULL, 
	provider VARCHAR, 
	provider_id VARCHAR, 
	error VARCHAR, 
	claim VARCHAR, 
	choice JSON, 
	tally VARCHAR, 
	engaged VARCHAR, 
	PRIMARY KEY (message_id)
);

CREATE INDEX ix_messages_at ON messages (at, message_id);

CREATE INDEX ix_messages_journey_at ON messages (journey_id, at, message_id);

CREATE INDEX ix_messages_leased ON messages (next_attempt_at) WHERE dispatch = 'leased';

CREATE INDEX ix_messages_pending ON messages (next_attempt_at) WHERE dispatch = 'pending';

CREATE INDEX ix_messages_provider ON messages (provider_id) WHERE provider_id IS NOT NULL;

CREATE INDEX ix_messages_sending ON messages (next_attempt_at) WHERE dispatch = 'sending';

CREATE INDEX ix_messages_user_at ON messages (user_id, at);

CREATE TABLE meta (
	key VARCHAR NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE partition_leases (
	part SERIAL NOT NULL, 
	owner VARCHAR, 
	expires_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (part)
);

CREATE TABLE profiles (
	user_id VARCHAR NOT NULL, 
	phone VARCHAR, 
	doc JSON NOT NULL, 
	engagement JSON, 
	PRIMARY KEY (user_id)
);

CREATE INDEX ix_profiles_phone ON profiles (phone);

CREATE TABLE recent (
	id BIGSERIAL NOT NULL, 
	user_id VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	data JSON, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_recent_expires ON recent (expires_at);

CREATE INDEX ix_recent_user ON recent (user_id);

CREATE TABLE runs (
	run_id VARCHAR NOT NULL, 
	journey_id VARCHAR NOT NULL, 
	version VARCHAR NOT NULL, 
	trigger_kind VARCHAR NOT NULL, 
	occurrence VARCHAR NOT NULL, 
	scheduled_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	status VARCHAR NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	missed INTEGER NOT NULL, 
	profiles INTEGER NOT NULL, 
	matched INTEGER NOT NULL, 
	entered INTEGER NOT NULL, 
	skipped JSON NOT NULL, 
	last_user_id VARCHAR, 
	lease_owner VARCHAR, 
	lease_until TIMESTAMP WITH TIME ZONE, 
	error VARCHAR, 
	PRIMARY KEY (run_id), 
	CONSTRAINT uq_runs_occurrence UNIQUE (journey_id, occurrence)
);

CREATE INDEX ix_runs_status ON runs (status);

CREATE TABLE skips (
	id SERIAL NOT NULL, 
	instance_id VARCHAR NOT NULL, 
	user_id VARCHAR NOT NULL, 
	step VARCHAR NOT NULL, 
	message VARCHAR NOT NULL, 
	reason VARCHAR NOT NULL, 
	decisions JSON NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	detail VARCHAR, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_skips_user_id ON skips (user_id);

CREATE TABLE suppressed_numbers (
	number VARCHAR NOT NULL, 
	since TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (number)
);

CREATE TABLE suppressions (
	id SERIAL NOT NULL, 
	number VARCHAR NOT NULL, 
	keyword VARCHAR NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	source VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_suppressions_number ON suppressions (number);

CREATE TABLE timers (
	timer_id VARCHAR NOT NULL, 
	instance_id VARCHAR NOT NULL, 
	due TIMESTAMP WITH TIME ZONE NOT NULL, 
	user_id VARCHAR NOT NULL, 
	part INTEGER NOT NULL, 
	PRIMARY KEY (timer_id)
);

CREATE INDEX ix_timers_due ON timers (due);

CREATE TABLE workers (
	worker_id VARCHAR NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	heartbeat_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	stats JSON NOT NULL, 
	PRIMARY KEY (worker_id)
);
