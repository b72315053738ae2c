/** What the integration global setup provides to every test file (endpoints of the services under test). */
declare module 'vitest' {
  export interface ProvidedContext {
    stackEnv: Record<string, string>;
  }
}

export {};
