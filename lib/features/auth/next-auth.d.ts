import 'next-auth';

declare module 'next-auth' {
  interface Session {
    user: { id: number; username: string; superuser: boolean; name?: string | null; email?: string | null; image?: string | null };
  }
}
