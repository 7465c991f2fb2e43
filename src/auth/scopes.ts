/** The national auditor's scope: the audit history of every legal entity (audit:read is own-entity only). */
export const AUDIT_READ_ALL = 'audit:read_all';

/** Every scope an MIS acting for one legal entity may hold; the demo token carries exactly these. */
export const MIS_SCOPES = [
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

/** The operator's scope: start a rebuild of the read models on the running server. */
export const ADMIN_WRITE = 'admin:write';

/** The upstream integration's (operator's) scopes: change and read the reference data. */
export const REFERENCE_WRITE = 'reference:write';
export const REFERENCE_READ = 'reference:read';

/** Every scope this registry checks. */
export const ALL_SCOPES = [...MIS_SCOPES, AUDIT_READ_ALL, ADMIN_WRITE, REFERENCE_WRITE, REFERENCE_READ];
