/** Every scope this registry checks (the demo token carries all of them). */
export const ALL_SCOPES = [
  'device_dispense:write',
  'device_dispense:read',
  'device_dispense:complete',
  'device_dispense:stop',
  'device_dispense:mark_in_error',
  'license:write',
  'license:read',
  'audit:read',
  'admin:read',
];
