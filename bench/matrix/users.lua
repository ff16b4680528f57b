-- wrk script for the users service's end-to-end row (bench/matrix/run.py):
--   wrk ... -s users.lua URL -- read COUNT     GET /users/{id}, ids drawn from 1..COUNT
--   wrk ... -s users.lua URL -- create PREFIX  POST /users, a new email each time (PREFIX keeps runs apart)
local mode, value
local sent = 0

function init(args)
  mode, value = args[1], args[2]
  math.randomseed(os.time())
end

function request()
  if mode == "read" then
    return wrk.format("GET", "/users/" .. math.random(1, tonumber(value)))
  end
  sent = sent + 1
  local body = string.format('{"name":"Load %d","email":"%s-%d@load.test"}', sent, value, sent)
  return wrk.format("POST", "/users", {["Content-Type"] = "application/json"}, body)
end
