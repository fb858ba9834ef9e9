//! The Lua scripts that make each state change atomic. Each one touches the keys of a single
//! user only (one hash tag, so one Redis Cluster slot), only keys passed in KEYS (Redis
//! Cluster routes a script by its KEYS and may refuse any other key), and documents its KEYS
//! and ARGV.
//!
//! The device hash (`...:d:<device_id>`) has these fields, all written by these scripts:
//!
//! | field | written by | meaning |
//! |---|---|---|
//! | `reg_at` | register, unregister | at_ms of the last registration or unregistration |
//! | `unregistered` | register (`0`), unregister and token removal (`1`) | tombstone flag |
//! | `vendor`, `business_id`, `token`, `tpns` | register | the registration (deleted by a tombstone) |
//! | `pres_at` | presence | at_ms of the last presence change |
//! | `presence`, `unread` | presence | `PresenceState` number; unread of the last BACKGROUND |
//! | `since` | presence (reset), badge bump | pushes since the last BACKGROUND/FOREGROUND |
//!
//! Timestamps are compared with Lua numbers (doubles); the Rust side refuses an `at_ms`
//! beyond ±2^53, where that comparison would stop being exact.
//!
//! The last-write-wins scripts return 1 (applied), 0 (stale: the stored timestamp is equal
//! or newer, nothing changed) or -1 (the stored timestamp is not a number, nothing changed).

/// Every script, to load on a node that has none.
pub(crate) const ALL: [&str; 8] = [
    REGISTER_DEVICE,
    UNREGISTER_DEVICE,
    SET_PRESENCE,
    SET_SETTINGS,
    SET_CONVERSATION_OPTION,
    BUMP_BADGES,
    REMOVE_DEVICE_IF_TOKEN,
    RELEASE_CLAIMS,
];

/// Registers or re-registers a device, unless a registration or unregistration at the same
/// or a later time is already stored (`reg_at` is shared, so an old registration arriving
/// after a newer unregistration cannot resurrect the device). Presence fields are left alone:
/// a presence that arrived first stays valid.
///
/// KEYS[1] the user's set of registered device ids; KEYS[2] the device hash.
/// ARGV[1] device id, ARGV[2] at_ms, ARGV[3] vendor (enum number), ARGV[4] business_id,
/// ARGV[5] token, ARGV[6] is_tpns_token (`1` or `0`).
pub(crate) const REGISTER_DEVICE: &str = r"
local stored = redis.call('HGET', KEYS[2], 'reg_at')
if stored then
  local stored_at = tonumber(stored)
  if not stored_at then return -1 end
  if stored_at >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[2], 'reg_at', ARGV[2], 'unregistered', '0', 'vendor', ARGV[3],
  'business_id', ARGV[4], 'token', ARGV[5], 'tpns', ARGV[6])
redis.call('SADD', KEYS[1], ARGV[1])
return 1
";

/// Unregisters a device, under the same last-write-wins rule as registration. The hash stays
/// as a tombstone (`unregistered = 1`, `reg_at` kept) so that an older registration that
/// arrives later is recognised as stale; the registration fields are deleted and the device
/// leaves the user's set. Presence fields are kept for a later re-registration.
///
/// KEYS[1] the user's set of registered device ids; KEYS[2] the device hash.
/// ARGV[1] device id, ARGV[2] at_ms.
pub(crate) const UNREGISTER_DEVICE: &str = r"
local stored = redis.call('HGET', KEYS[2], 'reg_at')
if stored then
  local stored_at = tonumber(stored)
  if not stored_at then return -1 end
  if stored_at >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[2], 'reg_at', ARGV[2], 'unregistered', '1')
redis.call('HDEL', KEYS[2], 'vendor', 'business_id', 'token', 'tpns')
redis.call('SREM', KEYS[1], ARGV[1])
return 1
";

/// Stores a presence change, last write wins by its own timestamp (`pres_at`), independent
/// of registration so that the two event streams cannot overwrite each other. Works for a
/// device not registered yet: the hash is created, the device stays out of the user's set.
///
/// KEYS[1] the device hash.
/// ARGV[1] at_ms, ARGV[2] presence state (enum number), ARGV[3] unread count to store or
/// an empty string to keep the stored one, ARGV[4] `1` to reset the pushes-since counter
/// (BACKGROUND and FOREGROUND: the user has just seen the app) or `0` to keep it.
pub(crate) const SET_PRESENCE: &str = r"
local stored = redis.call('HGET', KEYS[1], 'pres_at')
if stored then
  local stored_at = tonumber(stored)
  if not stored_at then return -1 end
  if stored_at >= tonumber(ARGV[1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'pres_at', ARGV[1], 'presence', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'unread', ARGV[3])
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'since', '0')
end
return 1
";

/// Stores a user's push settings (quiet hours included), last write wins by their `at`.
/// Conversation options in the same hash are left alone.
///
/// KEYS[1] the settings hash.
/// ARGV[1] at_ms, ARGV[2] open_push (enum number), ARGV[3] c2c_sound, ARGV[4] group_sound,
/// ARGV[5] quiet_start_s, ARGV[6] quiet_duration_s, ARGV[7] quiet_option (enum number).
pub(crate) const SET_SETTINGS: &str = r"
local stored = redis.call('HGET', KEYS[1], 'at')
if stored then
  local stored_at = tonumber(stored)
  if not stored_at then return -1 end
  if stored_at >= tonumber(ARGV[1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'open_push', ARGV[2], 'c2c_sound', ARGV[3],
  'group_sound', ARGV[4], 'quiet_start', ARGV[5], 'quiet_duration', ARGV[6],
  'quiet_option', ARGV[7])
return 1
";

/// Stores a user's receive option for one conversation, last write wins by its own
/// timestamp. It lives in the settings hash (fields `c:<conversation>` and
/// `ca:<conversation>`), so the router reads it with the settings, in the same command.
///
/// KEYS[1] the settings hash.
/// ARGV[1] the option's field (`c:<conversation>`), ARGV[2] its timestamp field
/// (`ca:<conversation>`), ARGV[3] at_ms, ARGV[4] the option (enum number).
pub(crate) const SET_CONVERSATION_OPTION: &str = r"
local stored = redis.call('HGET', KEYS[1], ARGV[2])
if stored then
  local stored_at = tonumber(stored)
  if not stored_at then return -1 end
  if stored_at >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3], ARGV[1], ARGV[4])
return 1
";

/// Counts one message once per device of one user towards its badge. The number given to a
/// (message, device) is kept in a badge record for ARGV[1] seconds, so a redelivered message
/// gets the same number back and is not counted twice. A device without a hash (removed
/// meanwhile) gets 1 and no hash is created for it.
///
/// KEYS[2i-1] the i-th device hash, KEYS[2i] its badge record for this message.
/// ARGV[1] lifetime of the badge records, in seconds.
/// Returns per device `{pushes_since, corrupt}`: the pushes since the last BACKGROUND or
/// FOREGROUND report, this one included; `corrupt` is 1 when the stored counter was not an
/// integer (`HINCRBY` refused it) and was restarted from 0. Four commands per device on a
/// first count (the script's cost is in its `redis.call`s, about a microsecond each).
pub(crate) const BUMP_BADGES: &str = r"
local counts = {}
for i = 1, #KEYS, 2 do
  local device, record = KEYS[i], KEYS[i + 1]
  local corrupt = 0
  local count = tonumber(redis.call('GET', record))
  if not count then
    if redis.call('EXISTS', device) == 1 then
      count = redis.pcall('HINCRBY', device, 'since', 1)
      if type(count) == 'table' then
        corrupt = 1
        count = 1
        redis.call('HSET', device, 'since', count)
      end
    else
      count = 1
    end
    redis.call('SET', record, count, 'EX', ARGV[1])
  end
  counts[#counts + 1] = {count, corrupt}
end
return counts
";

/// Drops a registration the vendor declared dead, only if the device still holds exactly
/// that token: a newer registration with a fresh token must survive. Leaves the same
/// tombstone as an unregistration (with the dead registration's `reg_at`), so an older
/// registration arriving later cannot bring the dead token back.
///
/// KEYS[1] the user's set of registered device ids; KEYS[2] the device hash.
/// ARGV[1] device id, ARGV[2] the dead token.
/// Returns 1 removed, 0 left alone.
pub(crate) const REMOVE_DEVICE_IF_TOKEN: &str = r"
local fields = redis.call('HMGET', KEYS[2], 'token', 'unregistered')
if fields[1] ~= ARGV[2] or fields[2] == '1' then return 0 end
redis.call('HSET', KEYS[2], 'unregistered', '1')
redis.call('HDEL', KEYS[2], 'vendor', 'business_id', 'token', 'tpns')
redis.call('SREM', KEYS[1], ARGV[1])
return 1
";

/// Releases send claims this process still holds (the push was not delivered), so a retry
/// need not wait for the claims to expire. A claim is only deleted while it still holds this
/// owner's value: a delivery record, or another process's claim, is left alone.
/// KEYS: the dedupe keys of one user's devices. ARGV[1] the claim value.
/// Returns the number released.
pub(crate) const RELEASE_CLAIMS: &str = r"
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
";

/// A credential's rate limit for the whole fleet, as a generic cell rate algorithm (GCRA):
/// the key holds the theoretical arrival time (TAT, µs on Redis's own clock, so the
/// processes' clocks do not matter). `tokens` may pass when the TAT they would push to is no
/// further ahead of now than the burst allows; then the TAT moves, else nothing changes
/// and the reply is how long to wait, in µs (0: taken).
///
/// KEYS[1] the credential's rate key; ARGV[1] µs per token, ARGV[2] the burst in µs
/// (tokens × µs per token), ARGV[3] tokens wanted.
pub(crate) const TAKE_RATE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + tokens * interval
local allow_at = new_tat - burst
if allow_at > now then
  return allow_at - now
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return 0
";

/// Adds pushes the vendor accepted to a credential's count for the day and returns the
/// day's total for the fleet; the count outlives its day by one so late readers see it.
///
/// KEYS[1] the day's quota key; ARGV[1] pushes to add (0: only read), ARGV[2] TTL in seconds.
pub(crate) const COUNT_QUOTA: &str = r"
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return used
";
