// InteropKerberos authenticates to a Pacemaker daemon (auth KERBEROS) with
// the JDK's own SASL GSSAPI client, set up exactly as Storm's
// KerberosSaslNettyClient does: log in through the JAAS section
// PacemakerClient (java.security.auth.login.config), take serviceName from
// that section's options, and create the client inside Subject.doAs with
// mechanism GSSAPI, authorization id = the logged-in principal, protocol =
// serviceName, server name = the host, QOP "auth" and SERVER_AUTH false.
// The first token is the response to an empty challenge, sent as a
// SASL_MESSAGE_TOKEN with no CONTROL request before it. The frames are
// Storm's: CONTROL_MESSAGE with a 2-byte code, SASL_MESSAGE_TOKEN with
// short -500, int length, token.
//
// Modes:
//   ok      authenticate, write a pulse, read it back, list, EXISTS
//   mutual  the same with SERVER_AUTH true (the server must send an AP-REP)
//   noread  authenticate as a principal that may not read: writes are
//           answered, reads get NOT_AUTHORIZED
//   refused the server must close the connection during the handshake
// Prints "interop-kerberos: <n> checks, <m> failures"; exits 1 on a failed
// check, 2 on an I/O, login or protocol error.
//
// Usage: java -Djava.security.auth.login.config=JAAS -Djava.security.krb5.conf=KRB5
//        InteropKerberos HOST PORT MODE [SASL_HOST [DELAY_MS]]
// SASL_HOST (default HOST) names the server in its service principal;
// DELAY_MS waits between making the first token and sending it.

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.Principal;
import java.security.PrivilegedExceptionAction;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.security.auth.Subject;
import javax.security.auth.callback.Callback;
import javax.security.auth.kerberos.KerberosTicket;
import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.Configuration;
import javax.security.auth.login.LoginContext;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslClient;

import org.apache.thrift.TDeserializer;
import org.apache.thrift.TSerializer;
import org.apache.thrift.protocol.TBinaryProtocol;

import pacemaker.thriftref.HBMessage;
import pacemaker.thriftref.HBMessageData;
import pacemaker.thriftref.HBPulse;
import pacemaker.thriftref.HBServerMessageType;

public final class InteropKerberos {
    private static final String SECTION = "PacemakerClient";
    private static final short SASL_COMPLETE = -203;
    private static final short SASL_TOKEN = -500;

    private final DataInputStream in;
    private final DataOutputStream out;
    private final TSerializer ser = new TSerializer(new TBinaryProtocol.Factory(true, true));
    private final TDeserializer de = new TDeserializer(new TBinaryProtocol.Factory(true, true));
    private int checks, failures;

    private InteropKerberos(Socket s) throws Exception {
        in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
        out = new DataOutputStream(s.getOutputStream());
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: InteropKerberos HOST PORT ok|mutual|noread|refused [SASL_HOST [DELAY_MS]]");
            System.exit(2);
        }
        String host = args[0];
        String mode = args[2];
        String saslHost = args.length > 3 ? args[3] : host;
        long delay = args.length > 4 ? Long.parseLong(args[4]) : 0;
        int code;
        try {
            // As Storm's Login: a fresh login for this connection.
            LoginContext lc = new LoginContext(SECTION);
            lc.login();
            Subject subject = lc.getSubject();
            AppConfigurationEntry[] entries = Configuration.getConfiguration().getAppConfigurationEntry(SECTION);
            String serviceName = (String) entries[0].getOptions().get("serviceName");
            Principal principal = subject.getPrincipals().iterator().next();
            String principalName = principal.getName();
            if (subject.getPrivateCredentials(KerberosTicket.class).isEmpty()) {
                throw new IllegalStateException("login gave no Kerberos ticket");
            }
            System.out.println("logged in as " + principalName + ", service " + serviceName + "/" + saslHost);
            SaslClient sc = Subject.doAs(subject, (PrivilegedExceptionAction<SaslClient>) () -> {
                Map<String, String> props = new TreeMap<>();
                props.put(Sasl.QOP, "auth");
                props.put(Sasl.SERVER_AUTH, mode.equals("mutual") ? "true" : "false");
                return Sasl.createSaslClient(new String[] {"GSSAPI"}, principalName, serviceName, saslHost, props,
                        callbacks -> {
                            for (Callback c : callbacks) {
                                System.out.println("callback " + c.getClass().getName());
                            }
                        });
            });
            try (Socket s = new Socket(host, Integer.parseInt(args[1]))) {
                s.setSoTimeout(15_000);
                InteropKerberos t = new InteropKerberos(s);
                boolean authenticated = t.authenticate(subject, sc, mode, delay);
                if (authenticated && mode.equals("noread")) {
                    t.refusedReads();
                } else if (authenticated) {
                    t.readBack(principalName);
                }
                System.out.printf("interop-kerberos: %d checks, %d failures%n", t.checks, t.failures);
                code = t.failures == 0 ? 0 : 1;
            }
        } catch (Exception e) {
            System.out.println("ERROR " + e);
            e.printStackTrace(System.out);
            code = 2;
        }
        System.exit(code);
    }

    private static byte[] evaluate(Subject subject, SaslClient sc, byte[] challenge) throws Exception {
        return Subject.doAs(subject, (PrivilegedExceptionAction<byte[]>) () -> sc.evaluateChallenge(challenge));
    }

    // authenticate runs the exchange as KerberosSaslClientHandler does;
    // false when the server (as expected in mode "refused") closed it.
    private boolean authenticate(Subject subject, SaslClient sc, String mode, long delay) throws Exception {
        byte[] first = evaluate(subject, sc, new byte[0]);
        check("initial token is a GSS-API context token", first != null && first.length > 0 && first[0] == 0x60,
                "first byte " + (first == null || first.length == 0 ? "none" : first[0]));
        if (delay > 0) {
            Thread.sleep(delay);
        }
        send(token(first));
        int rounds = 0;
        try {
            while (true) {
                HBMessage m = read();
                if (m.getType() == HBServerMessageType.CONTROL_MESSAGE) {
                    short code = ByteBuffer.wrap(m.getData().getMessage_blob()).getShort();
                    if (mode.equals("refused")) {
                        check("connection closed during the handshake", false, "server sent control " + code);
                        return false;
                    }
                    check("SASL_COMPLETE after the exchange", code == SASL_COMPLETE && sc.isComplete(),
                            "control " + code + ", client complete " + sc.isComplete());
                    check("server rounds " + (mode.equals("mutual") ? "2 (AP-REP, offer)" : "1 (offer)"),
                            rounds == (mode.equals("mutual") ? 2 : 1), "rounds " + rounds);
                    String qop = (String) sc.getNegotiatedProperty(Sasl.QOP);
                    check("negotiated QOP auth", "auth".equals(qop), "QOP " + qop);
                    return true;
                }
                if (m.getType() != HBServerMessageType.SASL_MESSAGE_TOKEN) {
                    throw new IllegalStateException("unexpected " + m.getType() + " during the handshake");
                }
                rounds++;
                byte[] response = evaluate(subject, sc, tokenOf(m));
                if (response != null) {
                    send(token(response));
                }
            }
        } catch (EOFException | SocketException e) {
            if (mode.equals("refused")) {
                check("connection closed during the handshake", true, "");
                return false;
            }
            throw e;
        }
    }

    private void readBack(String principalName) throws Exception {
        String id = "/pacemaker/interop-kerberos/node-1-6700";
        byte[] details = ("kerberos-pulse from " + principalName).getBytes(StandardCharsets.UTF_8);
        HBPulse p = new HBPulse();
        p.setId(id);
        p.setDetails(details);
        HBMessage w = call(HBServerMessageType.SEND_PULSE, HBMessageData.pulse(p), 1);
        check("SEND_PULSE", w.getType() == HBServerMessageType.SEND_PULSE_RESPONSE, "" + w);
        HBMessage r = call(HBServerMessageType.GET_PULSE, HBMessageData.path(id), 2);
        check("GET_PULSE reads back", r.getType() == HBServerMessageType.GET_PULSE_RESPONSE
                && Arrays.equals(details, r.getData().getPulse().getDetails()), "" + r);
        HBMessage l = call(HBServerMessageType.GET_ALL_NODES_FOR_PATH, HBMessageData.path("/pacemaker/interop-kerberos"), 3);
        List<String> nodes = l.getType() == HBServerMessageType.GET_ALL_NODES_FOR_PATH_RESPONSE
                ? l.getData().getNodes().getPulseIds() : null;
        check("GET_ALL_NODES_FOR_PATH", nodes != null && nodes.equals(List.of("node-1-6700")), "" + l);
        HBMessage e = call(HBServerMessageType.EXISTS, HBMessageData.path(id), 4);
        check("EXISTS", e.getType() == HBServerMessageType.EXISTS_RESPONSE && e.getData().getBoolval(), "" + e);
    }

    private void refusedReads() throws Exception {
        String id = "/pacemaker/interop-kerberos/noread-6700";
        HBPulse p = new HBPulse();
        p.setId(id);
        p.setDetails("written by a non-reader".getBytes(StandardCharsets.UTF_8));
        HBMessage w = call(HBServerMessageType.SEND_PULSE, HBMessageData.pulse(p), 5);
        check("SEND_PULSE accepted", w.getType() == HBServerMessageType.SEND_PULSE_RESPONSE, "" + w);
        HBMessage r = call(HBServerMessageType.GET_PULSE, HBMessageData.path(id), 6);
        check("GET_PULSE refused", r.getType() == HBServerMessageType.NOT_AUTHORIZED, "" + r);
        HBMessage e = call(HBServerMessageType.EXISTS, HBMessageData.path(id), 7);
        check("EXISTS refused", e.getType() == HBServerMessageType.NOT_AUTHORIZED, "" + e);
    }

    private void check(String name, boolean ok, String why) {
        checks++;
        if (ok) {
            System.out.println("ok   " + name);
        } else {
            failures++;
            System.out.println("FAIL " + name + ": " + why);
        }
    }

    private static HBMessage token(byte[] tok) {
        ByteBuffer b = ByteBuffer.allocate(6 + tok.length).putShort(SASL_TOKEN).putInt(tok.length).put(tok);
        HBMessage m = new HBMessage();
        m.setType(HBServerMessageType.SASL_MESSAGE_TOKEN);
        m.setData(HBMessageData.message_blob(b.array()));
        return m;
    }

    private static byte[] tokenOf(HBMessage m) {
        ByteBuffer b = ByteBuffer.wrap(m.getData().getMessage_blob());
        short kind = b.getShort();
        if (kind != SASL_TOKEN) {
            throw new IllegalStateException("SASL token frame with code " + kind);
        }
        byte[] tok = new byte[b.getInt()];
        b.get(tok);
        return tok;
    }

    private HBMessage call(HBServerMessageType type, HBMessageData data, int id) throws Exception {
        HBMessage m = new HBMessage();
        m.setType(type);
        m.setData(data);
        m.setMessage_id(id);
        send(m);
        while (true) {
            HBMessage r = read();
            if (r.getType() == HBServerMessageType.CONTROL_MESSAGE) {
                continue; // a server may repeat SASL_COMPLETE, as Storm's does
            }
            if (r.getMessage_id() != id) {
                throw new IllegalStateException("answer id " + r.getMessage_id() + ", want " + id);
            }
            return r;
        }
    }

    private void send(HBMessage m) throws Exception {
        byte[] body = ser.serialize(m);
        out.writeInt(body.length);
        out.write(body);
        out.flush();
    }

    private HBMessage read() throws Exception {
        byte[] body = new byte[in.readInt()];
        in.readFully(body);
        HBMessage m = new HBMessage();
        de.deserialize(m, body);
        return m;
    }
}
