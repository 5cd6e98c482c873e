-- What each instance's wanted settings are made of (lib/fleet/settings/wanted.ts): the groups of its
-- environment, herd and own, its herd's overrides, its host's memory and cores; and what was judged last.
SELECT i.id, i.herd_id, i.server_version_num, i.settings_snapshot_id, i.settings_wanted_digest, i.settings_drift,
       eg.id AS eg_id, eg.name AS eg_name, eg.version AS eg_version, eg.settings AS eg_settings,
       hg.id AS hg_id, hg.name AS hg_name, hg.version AS hg_version, hg.settings AS hg_settings,
       ig.id AS ig_id, ig.name AS ig_name, ig.version AS ig_version, ig.settings AS ig_settings,
       h.setting_overrides, s.memory_mb, s.cpus
FROM instances i
JOIN herds h ON h.id = i.herd_id
JOIN environments e ON e.id = h.environment_id
JOIN servers s ON s.id = i.server_id
LEFT JOIN parameter_groups eg ON eg.id = e.parameter_group_id
LEFT JOIN parameter_groups hg ON hg.id = h.parameter_group_id
LEFT JOIN parameter_groups ig ON ig.id = i.parameter_group_id
