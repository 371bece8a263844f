-- bench/counter.lua: wrk script for the session counter page (counter.php
-- answers the session's counter after incrementing it).
--
--   wrk -tC -cC ... -s bench/counter.lua URL -- own
--       each thread starts its own session: its first response's Set-Cookie
--       is sent with every later request. wrk's Lua state is per thread, not
--       per connection, so run one connection per thread (-t = -c) to get one
--       session per connection; with more connections per thread the first
--       requests of a thread would start several sessions.
--   wrk ... -s bench/counter.lua URL -- 'name=value'
--       every request sends this cookie: one hot session.
--
-- At the end it prints one line for run.sh:
--   counter: ok=<200 responses> dup=<200 responses repeating a counter value>
-- A front that serializes the requests of a session answers each 200 with a
-- counter value no other response carried; a repeated value is an increment
-- that overlapped another one (a lost update, or a request whose session
-- could not be read at all). In "own" mode values repeat across sessions, so
-- dup is counted per thread (= per session).

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

mode = "hot" -- a global, so that done() can read it with thread:get
local cookie = nil
local req = nil
ok = 0
dup = 0
seen = {}

function init(args)
	local a = args[1]
	if a == nil or a == "" then
		error("counter.lua: pass 'own' or a cookie after --")
	end
	if a == "own" then
		mode = "own"
	else
		cookie = a
	end
end

function request()
	if req == nil then
		if cookie == nil then
			-- No session yet: the answer to this request starts one.
			return wrk.format()
		end
		req = wrk.format(nil, nil, { ["Cookie"] = cookie })
	end
	return req
end

function response(status, headers, body)
	if status ~= 200 then
		return
	end
	ok = ok + 1
	if cookie == nil then
		for k, v in pairs(headers) do
			if string.lower(k) == "set-cookie" then
				cookie = string.match(v, "^%s*([^;]+)")
			end
		end
	end
	local n = tonumber(body)
	if n ~= nil then
		if seen[n] then
			dup = dup + 1
		else
			seen[n] = true
		end
	end
end

function done(summary, latency, requests)
	local total_ok, total_dup = 0, 0
	local all = {}
	for _, t in ipairs(threads) do
		total_ok = total_ok + (t:get("ok") or 0)
		if t:get("mode") == "own" then
			total_dup = total_dup + (t:get("dup") or 0)
		else
			-- One session for every thread: a value repeated across
			-- threads is a repeat too.
			for n, _ in pairs(t:get("seen") or {}) do
				if all[n] then
					total_dup = total_dup + 1
				else
					all[n] = true
				end
			end
			total_dup = total_dup + (t:get("dup") or 0)
		end
	end
	io.write(string.format("counter: ok=%d dup=%d\n", total_ok, total_dup))
end
