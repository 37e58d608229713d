-- Argo CD health check for execflow.dev Workflow
-- (argocd-cm key: resource.customizations.health.execflow.dev_Workflow).
-- Completed -> Healthy; Pending, Running -> Progressing; Paused -> Suspended;
-- Failed, Timeout, Cancelled -> Degraded. A status that has not caught up with the spec yet
-- (status.observedGeneration < metadata.generation) is Progressing whatever its phase.
local health = {
  Completed = "Healthy",
  Pending = "Progressing",
  Running = "Progressing",
  Paused = "Suspended",
  Failed = "Degraded",
  Timeout = "Degraded",
  Cancelled = "Degraded",
}
local hs = {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the workflow's status"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local text = status.phase
if status.progress ~= nil and status.progress ~= "" then
  text = text .. " " .. status.progress
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
