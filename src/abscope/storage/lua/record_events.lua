-- Apply a batch of events of ONE experiment, in order, with the counting semantics of
-- abscope.storage.base. Every key is in the experiment's hash slot (see storage/keys.py).
--
-- KEYS[1 .. B]  abscope:{id}:events:<bucket>, sets of applied event ids, the current
--                bucket first, then the older buckets still inside the window
-- KEYS[B + 1]    abscope:{id}:phases   set of phases with data
-- then, for each phase group g = 1..G, nine keys starting at KEYS[B + 2 + 9 (g - 1)]:
--          exposures (hash), converted (set), totals (hash), counts (hash), hourly (hash),
--          covariates (hash), covariate_counts (hash), probabilities (hash),
--          weighted_counts (hash)
-- then, only when the batch holds events or covariates of named metrics, for each group g
-- six keys starting at KEYS[B + 2 + 9 G + 6 (g - 1)]:
--          metric_users (hash), metric_counts (hash), metric_hourly (hash),
--          quantiles (hash), metric_covariates (hash), metric_covariate_counts (hash)
-- ARGV[1]  B, the number of event-id buckets
-- ARGV[2]  seconds the current bucket must live (set when the script adds an id to it)
-- ARGV[3]  G, the number of phase groups
-- ARGV[4 .. G + 3]  the phase number of each group
-- then 2 values per event: the user id, and the rest in one string (fewer arguments cost
-- less to send), "|"-separated: group | variant | kind ("exposure" | "conversion" |
-- "value") | value ("" unless kind is value) | probability | hour (epoch second of the UTC
-- hour start) | event id ("" when none). None of these can hold a "|" (the variant is a
-- slug, event ids are restricted, the rest are numbers or fixed words). An event of a
-- named metric has kind "metric_conversion" (value: the metric's name) or "metric_value"
-- (value: name;dx;dy, the numerator's and the denominator's increments), or, for a
-- request of a quantile metric, "metric_quantile" (value: name;dx;dy;c1,n1,c2,n2,...: a
-- metric value as above plus the request's quantile counter increments). An exposure's
-- value is its covariate ("" when none), followed by ";name,c" for each covariate of a
-- named metric it carries. Kind "covariate" backfills a covariate (value) for a user
-- exposed already (variant "", hour 0, no event id); kind "metric_covariate" backfills a
-- named metric's (value: name;c).
--
-- Returns one integer per event: outcome (0 counted, 1 duplicate, 2 variant_mismatch,
-- 3 covariate_mismatch) + 4 if it registered a new exposure + 8 if it registered a new
-- conversion; for a "covariate" item: 0 set, 1 unchanged, 2 conflict, 3 not exposed.
--
-- CUPED: a user's covariate c is set once (never replaced). The covariate_counts hash
-- keeps, per variant, samples, sum (c), sum_squares (c^2), and for the primary outcome y
-- (converted 0/1, and the value total) conversions, conversion_cross_sum (c y),
-- value_sum and value_cross_sum (c y): a covariate users' outcome increment dy adds
-- c dy, a covariate set after outcomes y adds c y. Whether a group has any covariate is
-- looked up once per call (EXISTS), so batches of experiments without covariates pay one
-- call per group, not one per event. A named metric's covariates work the same way per
-- (metric, user) in the metric_covariates hash, with sums per metric|variant|counter in
-- metric_covariate_counts over that metric's outcome (its converted 0/1 and value total
-- x); their existence is looked up once per call and group too, so metric events of an
-- experiment without metric covariates pay one EXISTS per call.
--
-- Adaptive traffic: a new exposure stores the user's p (probabilities hash) and adds 1 to
-- samples and 1/sqrt(p) to the weighted_counts hash; the primary's new conversion adds
-- 1/p, 1/p^2 and 1/sqrt(p) to the conversion_ sums and a value v on a total t adds v/p,
-- v/p^2, v/sqrt(p), (2tv + v^2)/p and (2tv + v^2)/p^2, all with the p of the user's
-- exposure. A user exposed before the store kept p has none and adds nothing (the
-- weighted samples then fall short of the variant's, which the analysis reports).
--
-- Counters are read once per batch, updated in Lua float64 arithmetic event by event (the
-- same roundings as any float64 accumulator) and written back at the end. A named metric
-- keeps, per user, "converted|x|y" (formatted with %.17g) and, per variant, the counters
-- of MetricCounts with the per-user update: dx, 2x dx + dx^2, dy, 2y dy + dy^2 and
-- x dy + y dx + dx dy. A quantile metric's request also adds its counter increments
-- (integers) to the fields <name>|<variant>|<counter> of the quantiles hash, and 1 to
-- <name>|<variant>|users on the user's first request of the metric (no metric_users
-- entry yet); they are summed over the batch and applied by HINCRBY at the end, never
-- read. Numbers are passed
-- to redis.call as Lua numbers, which Redis formats with %.17g (exact round trip); never
-- tostring(), which keeps only 14 digits.

local COUNTED, DUPLICATE, MISMATCH = 0, 1, 2
local NEW_EXPOSURE, NEW_CONVERSION = 4, 8
local FIELDS_PER_EVENT = 2
local PACKED = '^(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$'
local KEYS_PER_GROUP = 9
local COVARIATE_MISMATCH = 3
local SET, UNCHANGED, CONFLICT, NOT_EXPOSED = 0, 1, 2, 3
local METRIC_KEYS_PER_GROUP = 6
local METRIC_VALUE = '^([^;]*);([^;]*);([^;]*)$'
local QUANTILE_VALUE = '^([^;]*);([^;]*);([^;]*);(.*)$'
local METRIC_USER = '^(%d)|([^|]*)|([^|]*)$'
local HSET_CHUNK = 500

local buckets = tonumber(ARGV[1])
local bucket_ttl = tonumber(ARGV[2])
local groups = tonumber(ARGV[3])
local phases_key = KEYS[buckets + 1]
for g = 1, groups do
    redis.call('SADD', phases_key, ARGV[3 + g])
end

-- An event id is new when no bucket holds it. The older buckets are only read, so one
-- that does not exist now cannot hold an id: they are looked up once per call, not once
-- per event. The current bucket is claimed with SADD, whose answer says whether it held
-- the id already (one call, not a SISMEMBER and then an SADD); an event that is then
-- refused gives its id back.
local older = {}
for b = 2, buckets do
    if redis.call('EXISTS', KEYS[b]) == 1 then
        older[#older + 1] = KEYS[b]
    end
end
local function claim(event_id)
    for b = 1, #older do
        if redis.call('SISMEMBER', older[b], event_id) == 1 then
            return false
        end
    end
    return redis.call('SADD', KEYS[1], event_id) == 1
end
local ids_added = false

-- counter cache: cache[key][field] = number; read lazily, written back at the end
local cache = {}
local function add(key, field, delta)
    local fields = cache[key]
    if fields == nil then
        fields = {}
        cache[key] = fields
    end
    local current = fields[field]
    if current == nil then
        local stored = redis.call('HGET', key, field)
        current = stored and tonumber(stored) or 0
    end
    fields[field] = current + delta
end

-- field names per (hour, variant) and metric: {counts field, hourly field}, made once
local names = {}
local function field_names(hour, variant)
    local slot = hour .. '|' .. variant
    local known = names[slot]
    if known == nil then
        known = {}
        for _, metric in ipairs({'samples', 'inverse_probability_sum',
                'inverse_probability_square_sum', 'conversions', 'value_sum',
                'value_sum_squares'}) do
            known[metric] = {variant .. '|' .. metric, slot .. '|' .. metric}
        end
        names[slot] = known
    end
    return known
end

local function bump(counts_key, hourly_key, fields, metric, delta)
    local pair = fields[metric]
    add(counts_key, pair[1], delta)
    add(hourly_key, pair[2], delta)
end

-- the same for a named metric, per (hour, metric, variant)
local metric_names = {}
local function metric_field_names(hour, metric, variant)
    local slot = hour .. '|' .. metric .. '|' .. variant
    local known = metric_names[slot]
    if known == nil then
        known = {}
        local total = metric .. '|' .. variant .. '|'
        for _, counter in ipairs({'conversions', 'sum', 'sum_squares', 'denominator_sum',
                'denominator_sum_squares', 'cross_sum'}) do
            known[counter] = {total .. counter, slot .. '|' .. counter}
        end
        metric_names[slot] = known
    end
    return known
end

-- quantile counter increments: quantile_adds[key][field] = integer, applied at the end
local quantile_adds = {}
local function add_quantiles(key, prefix, counters, first)
    local fields = quantile_adds[key]
    if fields == nil then
        fields = {}
        quantile_adds[key] = fields
    end
    if first then
        local f = prefix .. 'users'
        fields[f] = (fields[f] or 0) + 1
    end
    for counter, amount in string.gmatch(counters, '([^,]+),([^,]+)') do
        local f = prefix .. counter
        fields[f] = (fields[f] or 0) + tonumber(amount)
    end
end

-- CUPED: a covariate stored in the hash covariates_key (the primary's, by user, or the named
-- metrics', by metric|user), nil when none. known caches per group whether the hash exists
-- (has_covariates for the primary's, has_metric_covariates for the named metrics'), so a
-- group without covariates costs one EXISTS per script, not one HGET per event.
local has_covariates, has_metric_covariates = {}, {}
local function stored_covariate(known, group, covariates_key, field)
    local exists = known[group]
    if exists == nil then
        exists = redis.call('EXISTS', covariates_key) == 1
        known[group] = exists
    end
    if not exists then
        return nil
    end
    local stored = redis.call('HGET', covariates_key, field)
    return stored and tonumber(stored) or nil
end

-- Count a named metric's conversion or value (the exposure is registered already);
-- return NEW_CONVERSION when it added the user's conversion, else 0.
local metric_base = buckets + 1 + groups * KEYS_PER_GROUP
local function count_metric(group, user, variant, kind, packed, hour)
    local base = metric_base + (tonumber(group) - 1) * METRIC_KEYS_PER_GROUP
    local users_key, counts_key, hourly_key = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
    local metric, dx, dy, counters = packed, nil, nil, nil
    if kind == 'metric_value' then
        metric, dx, dy = string.match(packed, METRIC_VALUE)
        dx, dy = tonumber(dx), tonumber(dy)
    elseif kind == 'metric_quantile' then
        metric, dx, dy, counters = string.match(packed, QUANTILE_VALUE)
        dx, dy = tonumber(dx), tonumber(dy)
    end
    local field = metric .. '|' .. user
    local converted, x, y = 0, 0, 0
    local stored = redis.call('HGET', users_key, field)
    if stored then
        converted, x, y = string.match(stored, METRIC_USER)
        converted, x, y = tonumber(converted), tonumber(x), tonumber(y)
    end
    if counters ~= nil then
        add_quantiles(KEYS[base + 4], metric .. '|' .. variant .. '|', counters, not stored)
    end
    local fields = metric_field_names(hour, metric, variant)
    local added = 0
    local sums_prefix = metric .. '|' .. variant .. '|'
    if dx == nil then
        if converted == 1 then
            return 0
        end
        converted = 1
        bump(counts_key, hourly_key, fields, 'conversions', 1)
        added = NEW_CONVERSION
        local mc = stored_covariate(has_metric_covariates, group, KEYS[base + 5], field)
        if mc ~= nil then
            add(KEYS[base + 6], sums_prefix .. 'conversions', 1)
            add(KEYS[base + 6], sums_prefix .. 'conversion_cross_sum', mc)
        end
    else
        local mc = stored_covariate(has_metric_covariates, group, KEYS[base + 5], field)
        if mc ~= nil then
            add(KEYS[base + 6], sums_prefix .. 'value_sum', dx)
            add(KEYS[base + 6], sums_prefix .. 'value_cross_sum', mc * dx)
        end
        bump(counts_key, hourly_key, fields, 'sum', dx)
        bump(counts_key, hourly_key, fields, 'sum_squares', 2 * x * dx + dx * dx)
        bump(counts_key, hourly_key, fields, 'denominator_sum', dy)
        bump(counts_key, hourly_key, fields, 'denominator_sum_squares', 2 * y * dy + dy * dy)
        bump(counts_key, hourly_key, fields, 'cross_sum', x * dy + y * dx + dx * dy)
        x, y = x + dx, y + dy
    end
    redis.call('HSET', users_key, field, string.format('%d|%.17g|%.17g', converted, x, y))
    return added
end


-- Set a user's covariate c (they have none) and count it with their outcomes so far.
local function set_covariate(group, base, user, variant, c)
    local converted_key, totals_key = KEYS[base + 2], KEYS[base + 3]
    local covariates_key, sums_key = KEYS[base + 6], KEYS[base + 7]
    redis.call('HSET', covariates_key, user, c)
    has_covariates[group] = true
    local converted = redis.call('SISMEMBER', converted_key, user)
    local stored = redis.call('HGET', totals_key, user)
    local t = stored and tonumber(stored) or 0
    local prefix = variant .. '|'
    add(sums_key, prefix .. 'samples', 1)
    add(sums_key, prefix .. 'sum', c)
    add(sums_key, prefix .. 'sum_squares', c * c)
    add(sums_key, prefix .. 'conversions', converted)
    add(sums_key, prefix .. 'conversion_cross_sum', c * converted)
    add(sums_key, prefix .. 'value_sum', t)
    add(sums_key, prefix .. 'value_cross_sum', c * t)
end

-- Set a user's covariate c of a named metric unless one is stored; count it with the
-- user's outcomes of the metric so far. Returns SET, UNCHANGED or CONFLICT.
local function set_metric_covariate(group, user, variant, metric, c)
    local base = metric_base + (tonumber(group) - 1) * METRIC_KEYS_PER_GROUP
    local field = metric .. '|' .. user
    local stored_c = stored_covariate(has_metric_covariates, group, KEYS[base + 5], field)
    if stored_c ~= nil then
        if stored_c == c then
            return UNCHANGED
        end
        return CONFLICT
    end
    redis.call('HSET', KEYS[base + 5], field, c)
    has_metric_covariates[group] = true
    local converted, x = 0, 0
    local stored = redis.call('HGET', KEYS[base + 1], field)
    if stored then
        local y
        converted, x, y = string.match(stored, METRIC_USER)
        converted, x = tonumber(converted), tonumber(x)
    end
    local prefix = metric .. '|' .. variant .. '|'
    local sums_key = KEYS[base + 6]
    add(sums_key, prefix .. 'samples', 1)
    add(sums_key, prefix .. 'sum', c)
    add(sums_key, prefix .. 'sum_squares', c * c)
    add(sums_key, prefix .. 'conversions', converted)
    add(sums_key, prefix .. 'conversion_cross_sum', c * converted)
    add(sums_key, prefix .. 'value_sum', x)
    add(sums_key, prefix .. 'value_cross_sum', c * x)
    return SET
end

-- An exposure's value: its covariate (nil when none) and its metric covariates ({} when
-- none) as a list of {name, c}
local function exposure_covariates(value)
    local primary, rest = string.match(value, '^([^;]*)(.*)$')
    local named = {}
    for metric, c in string.gmatch(rest, ';([^,;]+),([^;]+)') do
        named[#named + 1] = {metric, tonumber(c)}
    end
    return primary ~= '' and tonumber(primary) or nil, named
end

local function metric_covariates_conflict(group, user, named)
    if #named == 0 then
        return false
    end
    local base = metric_base + (tonumber(group) - 1) * METRIC_KEYS_PER_GROUP
    for _, item in ipairs(named) do
        local field = item[1] .. '|' .. user
        local stored = stored_covariate(has_metric_covariates, group, KEYS[base + 5], field)
        if stored ~= nil and stored ~= item[2] then
            return true
        end
    end
    return false
end

-- weighted_counts field names per variant, made once
local weighted_names = {}
local function weighted_fields(variant)
    local known = weighted_names[variant]
    if known == nil then
        known = {}
        for _, counter in ipairs({'samples', 'inverse_sqrt_probability_sum',
                'conversion_inverse_probability_sum', 'conversion_inverse_probability_square_sum',
                'conversion_inverse_sqrt_probability_sum', 'value_inverse_probability_sum',
                'value_inverse_probability_square_sum', 'value_inverse_sqrt_probability_sum',
                'square_inverse_probability_sum', 'square_inverse_probability_square_sum'}) do
            known[counter] = variant .. '|' .. counter
        end
        weighted_names[variant] = known
    end
    return known
end

-- The p of a user's exposure: the event's when it registered the exposure, else stored
local function probability_of(probabilities_key, user, exposed_now, probability)
    if exposed_now then
        return tonumber(probability)
    end
    local stored = redis.call('HGET', probabilities_key, user)
    return stored and tonumber(stored) or nil
end

local results = {}
local first = groups + 4
local n = (#ARGV - first + 1) / FIELDS_PER_EVENT
for i = 0, n - 1 do
    local a = first + i * FIELDS_PER_EVENT
    local user = ARGV[a]
    local group, variant, kind, value, probability, hour, event_id =
        string.match(ARGV[a + 1], PACKED)
    local base = buckets + 1 + (tonumber(group) - 1) * KEYS_PER_GROUP
    local exposures_key, converted_key, totals_key = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
    local counts_key, hourly_key = KEYS[base + 4], KEYS[base + 5]

    if kind == 'metric_covariate' then
        local metric, c = string.match(value, '^([^;]*);(.*)$')
        local exposed = redis.call('HGET', exposures_key, user)
        if not exposed then
            results[i + 1] = NOT_EXPOSED
        else
            results[i + 1] = set_metric_covariate(group, user, exposed, metric, tonumber(c))
        end
    elseif kind == 'covariate' then
        local c = tonumber(value)
        local exposed = redis.call('HGET', exposures_key, user)
        if not exposed then
            results[i + 1] = NOT_EXPOSED
        else
            local stored = stored_covariate(has_covariates, group, KEYS[base + 6], user)
            if stored == nil then
                set_covariate(group, base, user, exposed, c)
                results[i + 1] = SET
            elseif stored == c then
                results[i + 1] = UNCHANGED
            else
                results[i + 1] = CONFLICT
            end
        end
    elseif event_id ~= '' and not claim(event_id) then
        results[i + 1] = DUPLICATE
    else
        if event_id ~= '' then
            ids_added = true
        end
        local exposed = redis.call('HGET', exposures_key, user)
        local c, named = nil, nil
        if kind == 'exposure' and value ~= '' then
            c, named = exposure_covariates(value)
        end
        local refused = nil
        if exposed and exposed ~= variant then
            refused = MISMATCH
        elseif named ~= nil and metric_covariates_conflict(group, user, named) then
            refused = COVARIATE_MISMATCH
        elseif c ~= nil and exposed then
            local stored = stored_covariate(has_covariates, group, KEYS[base + 6], user)
            if stored ~= nil then
                if stored ~= c then
                    refused = COVARIATE_MISMATCH
                end
                c = nil -- set already (to this value, or refused)
            end
        end
        if refused ~= nil then
            if event_id ~= '' then
                redis.call('SREM', KEYS[1], event_id)
            end
            results[i + 1] = refused
        else
            local code = COUNTED
            local fields = field_names(hour, variant)
            local weighted_key = KEYS[base + 9]
            if not exposed then
                redis.call('HSET', exposures_key, user, variant)
                redis.call('HSET', KEYS[base + 8], user, probability)
                bump(counts_key, hourly_key, fields, 'samples', 1)
                local p = tonumber(probability)
                local names_w = weighted_fields(variant)
                add(weighted_key, names_w.samples, 1)
                add(weighted_key, names_w.inverse_sqrt_probability_sum, 1 / math.sqrt(p))
                local weight = 1 / p
                bump(counts_key, hourly_key, fields, 'inverse_probability_sum', weight)
                bump(counts_key, hourly_key, fields, 'inverse_probability_square_sum',
                    weight * weight)
                code = code + NEW_EXPOSURE
            end
            if kind == 'conversion' then
                if redis.call('SADD', converted_key, user) == 1 then
                    bump(counts_key, hourly_key, fields, 'conversions', 1)
                    code = code + NEW_CONVERSION
                    local p = probability_of(KEYS[base + 8], user, not exposed, probability)
                    if p ~= nil then
                        local names_w = weighted_fields(variant)
                        local w = 1 / p
                        add(weighted_key, names_w.conversion_inverse_probability_sum, w)
                        add(weighted_key, names_w.conversion_inverse_probability_square_sum, w * w)
                        add(weighted_key, names_w.conversion_inverse_sqrt_probability_sum,
                            1 / math.sqrt(p))
                    end
                    local uc = stored_covariate(has_covariates, group, KEYS[base + 6], user)
                    if uc ~= nil then
                        add(KEYS[base + 7], variant .. '|conversions', 1)
                        add(KEYS[base + 7], variant .. '|conversion_cross_sum', uc)
                    end
                end
            elseif kind == 'value' then
                local v = tonumber(value)
                local stored = redis.call('HGET', totals_key, user)
                local t = stored and tonumber(stored) or 0
                redis.call('HSET', totals_key, user, t + v)
                bump(counts_key, hourly_key, fields, 'value_sum', v)
                local square = 2 * t * v + v * v
                bump(counts_key, hourly_key, fields, 'value_sum_squares', square)
                local p = probability_of(KEYS[base + 8], user, not exposed, probability)
                if p ~= nil then
                    local names_w = weighted_fields(variant)
                    local w = 1 / p
                    add(weighted_key, names_w.value_inverse_probability_sum, v * w)
                    add(weighted_key, names_w.value_inverse_probability_square_sum, v * w * w)
                    add(weighted_key, names_w.value_inverse_sqrt_probability_sum, v / math.sqrt(p))
                    add(weighted_key, names_w.square_inverse_probability_sum, square * w)
                    add(weighted_key, names_w.square_inverse_probability_square_sum,
                        square * w * w)
                end
                local uc = stored_covariate(has_covariates, group, KEYS[base + 6], user)
                if uc ~= nil then
                    add(KEYS[base + 7], variant .. '|value_sum', v)
                    add(KEYS[base + 7], variant .. '|value_cross_sum', uc * v)
                end
            elseif kind == 'exposure' then
                if c ~= nil then
                    set_covariate(group, base, user, variant, c)
                end
                if named ~= nil then
                    for _, item in ipairs(named) do
                        set_metric_covariate(group, user, variant, item[1], item[2])
                    end
                end
            else
                code = code + count_metric(group, user, variant, kind, value, hour)
            end
            results[i + 1] = code
        end
    end
end

for key, fields in pairs(cache) do
    local args = {}
    for field, value in pairs(fields) do
        args[#args + 1] = field
        args[#args + 1] = value
        if #args >= 2 * HSET_CHUNK then
            redis.call('HSET', key, unpack(args))
            args = {}
        end
    end
    if #args > 0 then
        redis.call('HSET', key, unpack(args))
    end
end

for key, fields in pairs(quantile_adds) do
    for field, amount in pairs(fields) do
        redis.call('HINCRBY', key, field, amount)
    end
end

if ids_added then
    redis.call('EXPIRE', KEYS[1], bucket_ttl)
end

return results
