-- POST /api/2/idp/token for bench/tokens.sh. Counts non-200 answers.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("NEPHELE_CLIENT_BASIC")
wrk.body = os.getenv("NEPHELE_FORM")

local tokens = {}
for t in string.gmatch(os.getenv("NEPHELE_REFRESH_TOKENS") or "", "%S+") do
    table.insert(tokens, t)
end
local counter = 0
local threads = {}

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
    if #tokens > 0 then thread:set("rt", tokens[counter]) end
    table.insert(threads, thread)
end

function init(args)
    failures = 0
end

function request()
    if rt then
        return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. rt)
    end
    return wrk.format()
end

function response(status, headers, body)
    if status ~= 200 then
        failures = failures + 1
        return
    end
    if rt then
        rt = string.match(body, '"refresh_token":"([^"]+)"')
    end
end

function done(summary, latency, requests)
    local f = 0
    for _, t in ipairs(threads) do f = f + (t:get("failures") or 0) end
    io.write(string.format("non-200 answers: %d\n", f))
end
