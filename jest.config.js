// Native ESM jest (node --experimental-vm-modules). ts-jest only transpiles, file by file (tsconfig
// isolatedModules); `npm test` type-checks the whole project with tsc --noEmit first.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/support/summaryReporter.cjs'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Generous: a PGlite server start can take tens of seconds on a busy 2-core machine.
  testTimeout: 60000,
};
