-- wrk script: pipelines N requests per write (N = the first script argument, default 16).
--   wrk -t1 -c64 -d10s -s pipeline.lua http://127.0.0.1:8080/plaintext -- 16
init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format(nil)
  end
  pipelined = table.concat(batch)
end

request = function()
  return pipelined
end
