-- POST /api/v2/instances with an API key, a new name each time.
local key = os.getenv("NEPHELE_API_KEY")
local n = 0
request = function()
    n = n + 1
    local body = '{"name":"vm-' .. n .. '","image":"debian-12","cpu":1,"memoryMiB":128}'
    return wrk.format("POST", "/api/v2/instances",
        { ["MC-Api-Key"] = key, ["Content-Type"] = "application/json" }, body)
end
