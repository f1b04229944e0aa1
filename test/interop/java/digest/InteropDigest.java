// InteropDigest authenticates to a Pacemaker daemon (auth DIGEST) with the
// JDK's own SASL DIGEST-MD5 client, set up exactly as Storm's
// SaslNettyClient does it (mechanism DIGEST-MD5, no authorization id,
// protocol null, server name "default", POLICY_NOPLAINTEXT), with Storm's
// credential encoding: SASL username = base64(topology name), password =
// base64(lowercase hex SHA-512("user:password")) of the JAAS PacemakerDigest
// section. The frames are Storm's: CONTROL_MESSAGE with a 2-byte code,
// SASL_MESSAGE_TOKEN with short -500, int length, token.
//
// Modes:
//   ok    authenticate, write a pulse, read it back, list its parent
//   wrong authenticate with a wrong password: the server must close the
//         connection after the response, with no answer
// Prints "interop-digest: <n> checks, <m> failures"; exits 1 on a failed
// check, 2 on an I/O or protocol error.
//
// Usage: java InteropDigest HOST PORT USER PASSWORD MODE

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.NameCallback;
import javax.security.auth.callback.PasswordCallback;
import javax.security.sasl.RealmCallback;
import javax.security.sasl.Sasl;
import javax.security.sasl.SaslClient;

import org.apache.thrift.TDeserializer;
import org.apache.thrift.TSerializer;
import org.apache.thrift.protocol.TBinaryProtocol;

import pacemaker.thriftref.HBMessage;
import pacemaker.thriftref.HBMessageData;
import pacemaker.thriftref.HBPulse;
import pacemaker.thriftref.HBServerMessageType;

public final class InteropDigest {
    private static final short SASL_REQUEST = -202;
    private static final short SASL_COMPLETE = -203;
    private static final short SASL_TOKEN = -500;

    private final DataInputStream in;
    private final DataOutputStream out;
    private final TSerializer ser = new TSerializer(new TBinaryProtocol.Factory(true, true));
    private final TDeserializer de = new TDeserializer(new TBinaryProtocol.Factory(true, true));
    private int checks, failures;

    private InteropDigest(Socket s) throws Exception {
        in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
        out = new DataOutputStream(s.getOutputStream());
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: InteropDigest HOST PORT USER PASSWORD ok|wrong");
            System.exit(2);
        }
        int code;
        try (Socket s = new Socket(args[0], Integer.parseInt(args[1]))) {
            s.setSoTimeout(10_000);
            InteropDigest t = new InteropDigest(s);
            String secret = sha512Hex(args[2] + ":" + args[3]);
            if (args[4].equals("wrong")) {
                t.wrongPassword(secret);
            } else {
                t.authenticate(secret);
                t.readBack();
            }
            System.out.printf("interop-digest: %d checks, %d failures%n", t.checks, t.failures);
            code = t.failures == 0 ? 0 : 1;
        } catch (Exception e) {
            System.out.println("ERROR " + e);
            e.printStackTrace(System.out);
            code = 2;
        }
        System.exit(code);
    }

    static String sha512Hex(String s) throws Exception {
        byte[] sum = MessageDigest.getInstance("SHA-512").digest(s.getBytes(StandardCharsets.UTF_8));
        StringBuilder b = new StringBuilder();
        for (byte x : sum) {
            b.append(String.format("%02x", x));
        }
        return b.toString();
    }

    private static SaslClient newClient(String secret) throws Exception {
        String user = Base64.getEncoder().encodeToString("interop-topology".getBytes(StandardCharsets.UTF_8));
        char[] password = Base64.getEncoder().encodeToString(secret.getBytes(StandardCharsets.UTF_8)).toCharArray();
        Map<String, String> props = new HashMap<>();
        props.put(Sasl.POLICY_NOPLAINTEXT, "true");
        return Sasl.createSaslClient(new String[] {"DIGEST-MD5"}, null, null, "default", props, callbacks -> {
            for (Callback c : callbacks) {
                if (c instanceof NameCallback) {
                    ((NameCallback) c).setName(user);
                } else if (c instanceof PasswordCallback) {
                    ((PasswordCallback) c).setPassword(password);
                } else if (c instanceof RealmCallback) {
                    RealmCallback rc = (RealmCallback) c;
                    rc.setText(rc.getDefaultText());
                }
            }
        });
    }

    private void authenticate(String secret) throws Exception {
        SaslClient sc = newClient(secret);
        send(control(SASL_REQUEST));
        while (true) {
            HBMessage m = read();
            if (m.getType() == HBServerMessageType.CONTROL_MESSAGE) {
                short code = ByteBuffer.wrap(m.getData().getMessage_blob()).getShort();
                check("SASL_COMPLETE after the exchange", code == SASL_COMPLETE && sc.isComplete(),
                        "control " + code + ", client complete " + sc.isComplete());
                return;
            }
            if (m.getType() != HBServerMessageType.SASL_MESSAGE_TOKEN) {
                throw new IllegalStateException("unexpected " + m.getType() + " during the handshake");
            }
            byte[] challenge = tokenOf(m);
            byte[] response = sc.evaluateChallenge(challenge);
            if (response != null) {
                send(token(response));
            } else {
                check("rspauth verified by the JDK client", sc.isComplete(), "not complete");
            }
        }
    }

    private void wrongPassword(String rightSecret) throws Exception {
        SaslClient sc = newClient(rightSecret + "x");
        send(control(SASL_REQUEST));
        HBMessage challenge = read();
        send(token(sc.evaluateChallenge(tokenOf(challenge))));
        try {
            HBMessage m = read();
            check("connection closed after a wrong response", false, "server answered " + m);
        } catch (EOFException | SocketException e) {
            check("connection closed after a wrong response", true, "");
        }
    }

    private void readBack() throws Exception {
        String id = "/pacemaker/interop-digest/node-1-6700";
        byte[] details = "digest-pulse".getBytes(StandardCharsets.UTF_8);
        HBPulse p = new HBPulse();
        p.setId(id);
        p.setDetails(details);
        HBMessage w = call(HBServerMessageType.SEND_PULSE, HBMessageData.pulse(p), 1);
        check("SEND_PULSE", w.getType() == HBServerMessageType.SEND_PULSE_RESPONSE, "" + w);
        HBMessage r = call(HBServerMessageType.GET_PULSE, HBMessageData.path(id), 2);
        check("GET_PULSE reads back", r.getType() == HBServerMessageType.GET_PULSE_RESPONSE
                && Arrays.equals(details, r.getData().getPulse().getDetails()), "" + r);
        HBMessage l = call(HBServerMessageType.GET_ALL_NODES_FOR_PATH, HBMessageData.path("/pacemaker/interop-digest"), 3);
        List<String> nodes = l.getType() == HBServerMessageType.GET_ALL_NODES_FOR_PATH_RESPONSE
                ? l.getData().getNodes().getPulseIds() : null;
        check("GET_ALL_NODES_FOR_PATH", nodes != null && nodes.equals(List.of("node-1-6700")), "" + l);
        HBMessage e = call(HBServerMessageType.EXISTS, HBMessageData.path(id), 4);
        check("EXISTS", e.getType() == HBServerMessageType.EXISTS_RESPONSE && e.getData().getBoolval(), "" + e);
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

    private static HBMessage control(short code) {
        HBMessage m = new HBMessage();
        m.setType(HBServerMessageType.CONTROL_MESSAGE);
        m.setData(HBMessageData.message_blob(ByteBuffer.allocate(2).putShort(code).array()));
        return m;
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
        HBMessage r = read();
        if (r.getMessage_id() != id) {
            throw new IllegalStateException("answer id " + r.getMessage_id() + ", want " + id);
        }
        return r;
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
