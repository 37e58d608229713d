-- Argo CD health check for execflow.dev ResultSet
-- (argocd-cm key: resource.customizations.health.execflow.dev_ResultSet).
-- Ready -> Healthy; Expired -> Healthy (its data was deleted after spec.ttl, as asked);
-- Pending, Collecting -> Progressing; Failed -> Degraded. A status that has not caught up with
-- the spec yet (status.observedGeneration < metadata.generation) is Progressing.
local health = {
  Ready = "Healthy",
  Expired = "Healthy",
  Pending = "Progressing",
  Collecting = "Progressing",
  Failed = "Degraded",
}
local hs = {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the result set's status"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local text = status.phase
if status.count ~= nil then
  text = text .. ", collected " .. tostring(status.count)
end
if status.reason ~= nil and status.reason ~= "" and status.reason ~= status.phase then
  text = text .. " (" .. status.reason .. ")"
end
if status.message ~= nil and status.message ~= "" then
  text = text .. ": " .. status.message
end
hs.status = health[status.phase] or "Unknown"
hs.message = text
return hs
