import type { NextAuthOptions, User } from 'next-auth';
import type { JWT } from 'next-auth/jwt';
import CredentialsProvider from 'next-auth/providers/credentials';
import { z } from 'zod';
import { getDb } from '@/db/client';
import { authenticate } from './authenticate';
import { CLIENT_ADDRESS_HEADER, clientAddress } from './client-address';

const credentials = z.object({
  username: z.string().trim().min(1).max(200),
  password: z.string().min(1).max(1024),
});

export const authOptions: NextAuthOptions = {
  secret: process.env.NEXTAUTH_SECRET ?? process.env.AUTH_SECRET,
  session: { strategy: 'jwt', maxAge: 12 * 60 * 60 },
  pages: { signIn: '/login' },
  providers: [
    CredentialsProvider({
      id: 'credentials',
      name: 'pgherd account',
      credentials: { username: { label: 'Username', type: 'text' }, password: { label: 'Password', type: 'password' } },
      async authorize(raw, req) {
        const parsed = credentials.safeParse(raw);
        if (!parsed.success) return null;
        // next-auth hands the request's headers over untyped; ours is one string when present.
        const sentAddress: unknown = req.headers?.[CLIENT_ADDRESS_HEADER];
        const res = await authenticate(
          getDb(),
          parsed.data.username,
          parsed.data.password,
          clientAddress(typeof sentAddress === 'string' ? sentAddress : undefined),
        );
        // The code reaches the sign-in form as `error` (next-auth passes a thrown message on).
        if (!res.ok) throw new Error(res.code);
        return {
          id: String(res.user.id),
          name: res.user.displayName || res.user.username,
          username: res.user.username,
          superuser: res.user.isSuperuser,
        };
      },
    }),
  ],
  callbacks: {
    // next-auth passes `user` only at sign-in, whatever its type says.
    jwt({ token, user }: { token: JWT; user?: User }) {
      if (user) {
        const u = user as unknown as { id: string; username: string; superuser: boolean };
        token.uid = Number(u.id);
        token.username = u.username;
        token.superuser = u.superuser;
      }
      return token;
    },
    session({ session, token }) {
      session.user = {
        ...session.user,
        id: token.uid as number,
        username: token.username as string,
        superuser: Boolean(token.superuser),
      };
      return session;
    },
  },
};
