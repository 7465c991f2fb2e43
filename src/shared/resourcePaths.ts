/** Every resource path the API answers with or routes on, in one place (dispense, job, licence). */

export const DEVICE_DISPENSES_ROUTE = '/api/patients/:patient_id/device_dispenses';
export const JOB_ROUTE = '/api/jobs/:id';
export const LICENSES_ROUTE = '/api/licenses';

export const deviceDispensePath = (patientId: string, id: string) => `/api/patients/${patientId}/device_dispenses/${id}`;
export const jobPath = (id: string) => `/api/jobs/${id}`;
export const licensePath = (id: string) => `${LICENSES_ROUTE}/${id}`;
