// InteropNone talks to a Pacemaker daemon (auth NONE) the way Storm's Java
// peers do: HBMessage structs serialised by Apache Thrift's own Java library
// (TBinaryProtocol, strict) in 4-byte length-prefixed frames. The HB* classes
// are generated at test time from internal/wire/internal/thriftref/hb.thrift.
//
// It runs every request type with message ids and checks every answer,
// printing one line per check and a summary:
//   interop-none: <n> checks, <m> failures
// and exits 1 on any failure, 2 on an I/O or protocol error.
//
// Usage: java InteropNone HOST PORT

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.thrift.TDeserializer;
import org.apache.thrift.TSerializer;
import org.apache.thrift.protocol.TBinaryProtocol;

import pacemaker.thriftref.HBMessage;
import pacemaker.thriftref.HBMessageData;
import pacemaker.thriftref.HBPulse;
import pacemaker.thriftref.HBServerMessageType;

public final class InteropNone {
    private final DataInputStream in;
    private final DataOutputStream out;
    private final TSerializer ser;
    private final TDeserializer de;
    private int nextId = 0;
    private int checks = 0;
    private int failures = 0;

    private InteropNone(Socket s) throws Exception {
        in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
        out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
        // Storm's peers use the strict binary protocol.
        ser = new TSerializer(new TBinaryProtocol.Factory(true, true));
        de = new TDeserializer(new TBinaryProtocol.Factory(true, true));
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: InteropNone HOST PORT");
            System.exit(2);
        }
        int code;
        try (Socket s = new Socket(args[0], Integer.parseInt(args[1]))) {
            s.setSoTimeout(10_000);
            s.setTcpNoDelay(true);
            InteropNone t = new InteropNone(s);
            t.run();
            System.out.printf("interop-none: %d checks, %d failures%n", t.checks, t.failures);
            code = t.failures == 0 ? 0 : 1;
        } catch (Exception e) {
            System.out.println("ERROR " + e);
            e.printStackTrace(System.out);
            code = 2;
        }
        System.exit(code);
    }

    // --- the conversation ---

    private static final String NODE_A = "/wb/topo-1/node-a:6700";
    private static final String NODE_B = "/wb/topo-1/node-b:6701";
    private static final String NODE_C = "/wb/topo-2/node-c:6702";
    private static final byte[] DETAILS_A = "hello-pulse-1".getBytes(StandardCharsets.UTF_8);
    private static final byte[] DETAILS_B = {0, 1, 2, (byte) 0xff};
    private static final byte[] DETAILS_C = new byte[0]; // a present, empty value

    private void run() throws Exception {
        sendPulse(NODE_A, DETAILS_A);
        sendPulse(NODE_B, DETAILS_B);
        sendPulse(NODE_C, DETAILS_C);

        getPulse("GET_PULSE hit", NODE_A, DETAILS_A);
        getPulse("GET_PULSE hit, binary details", NODE_B, DETAILS_B);
        getPulse("GET_PULSE hit, empty details", NODE_C, DETAILS_C);
        getPulse("GET_PULSE miss", "/wb/missing", null);

        nodes("GET_ALL_NODES_FOR_PATH /wb/topo-1", "/wb/topo-1", "node-a:6700", "node-b:6701");
        nodes("GET_ALL_NODES_FOR_PATH /wb", "/wb", "topo-1", "topo-2");
        nodes("GET_ALL_NODES_FOR_PATH of nothing", "/nothing/here");

        exists("EXISTS true", NODE_B, true);
        exists("EXISTS false", "/wb/topo-9/none", false);

        noData("CREATE_PATH", HBServerMessageType.CREATE_PATH, "/wb/topo-9", HBServerMessageType.CREATE_PATH_RESPONSE);
        noData("GET_ALL_PULSE_FOR_PATH", HBServerMessageType.GET_ALL_PULSE_FOR_PATH, "/wb/topo-1",
                HBServerMessageType.GET_ALL_PULSE_FOR_PATH_RESPONSE);

        noData("DELETE_PULSE_ID", HBServerMessageType.DELETE_PULSE_ID, NODE_B, HBServerMessageType.DELETE_PULSE_ID_RESPONSE);
        exists("EXISTS after DELETE_PULSE_ID", NODE_B, false);
        exists("EXISTS of the sibling kept", NODE_A, true);
        nodes("GET_ALL_NODES_FOR_PATH after DELETE_PULSE_ID", "/wb/topo-1", "node-a:6700");

        noData("DELETE_PATH", HBServerMessageType.DELETE_PATH, "/wb/topo-1", HBServerMessageType.DELETE_PATH_RESPONSE);
        nodes("GET_ALL_NODES_FOR_PATH after DELETE_PATH", "/wb/topo-1");
        getPulse("GET_PULSE after DELETE_PATH", NODE_A, null);
        exists("EXISTS outside the deleted path", NODE_C, true);
        nodes("GET_ALL_NODES_FOR_PATH /wb after DELETE_PATH", "/wb", "topo-2");

        pipelined(40);

        noData("DELETE_PATH /wb", HBServerMessageType.DELETE_PATH, "/wb", HBServerMessageType.DELETE_PATH_RESPONSE);
        nodes("GET_ALL_NODES_FOR_PATH /wb after deleting it", "/wb");
    }

    private void sendPulse(String id, byte[] details) throws Exception {
        HBPulse p = new HBPulse();
        p.setId(id);
        p.setDetails(details);
        HBMessage resp = call(HBServerMessageType.SEND_PULSE, HBMessageData.pulse(p));
        expectNoData("SEND_PULSE " + id, resp, HBServerMessageType.SEND_PULSE_RESPONSE);
    }

    private void getPulse(String name, String path, byte[] want) throws Exception {
        HBMessage resp = call(HBServerMessageType.GET_PULSE, HBMessageData.path(path));
        if (!expectType(name, resp, HBServerMessageType.GET_PULSE_RESPONSE)) {
            return;
        }
        if (!resp.isSetData() || !resp.getData().isSetPulse()) {
            fail(name, "answer carries no pulse: " + resp);
            return;
        }
        HBPulse p = resp.getData().getPulse();
        if (!path.equals(p.getId())) {
            fail(name, "pulse id " + p.getId() + ", want " + path);
        } else if (want == null && p.isSetDetails()) {
            fail(name, "details present (" + p.getDetails().length + " bytes), want absent");
        } else if (want != null && !p.isSetDetails()) {
            fail(name, "details absent, want " + want.length + " bytes");
        } else if (want != null && !Arrays.equals(want, p.getDetails())) {
            fail(name, "details " + Arrays.toString(p.getDetails()) + ", want " + Arrays.toString(want));
        } else {
            ok(name);
        }
    }

    private void nodes(String name, String path, String... want) throws Exception {
        HBMessage resp = call(HBServerMessageType.GET_ALL_NODES_FOR_PATH, HBMessageData.path(path));
        if (!expectType(name, resp, HBServerMessageType.GET_ALL_NODES_FOR_PATH_RESPONSE)) {
            return;
        }
        if (!resp.isSetData() || !resp.getData().isSetNodes() || !resp.getData().getNodes().isSetPulseIds()) {
            fail(name, "answer carries no node list: " + resp);
            return;
        }
        List<String> got = resp.getData().getNodes().getPulseIds();
        Set<String> gotSet = new HashSet<>(got);
        if (gotSet.size() != got.size()) {
            fail(name, "duplicate nodes " + got);
        } else if (!gotSet.equals(new HashSet<>(Arrays.asList(want)))) {
            fail(name, "nodes " + got + ", want " + Arrays.toString(want) + " in any order");
        } else {
            ok(name);
        }
    }

    private void exists(String name, String path, boolean want) throws Exception {
        HBMessage resp = call(HBServerMessageType.EXISTS, HBMessageData.path(path));
        checkExists(name, resp, want);
    }

    private void checkExists(String name, HBMessage resp, boolean want) {
        if (!expectType(name, resp, HBServerMessageType.EXISTS_RESPONSE)) {
            return;
        }
        if (!resp.isSetData() || !resp.getData().isSetBoolval()) {
            fail(name, "answer carries no boolval: " + resp);
        } else if (resp.getData().getBoolval() != want) {
            fail(name, "boolval " + resp.getData().getBoolval() + ", want " + want);
        } else {
            ok(name);
        }
    }

    private void noData(String name, HBServerMessageType req, String path, HBServerMessageType want) throws Exception {
        expectNoData(name, call(req, HBMessageData.path(path)), want);
    }

    // pipelined sends n requests before reading any answer, as Storm's client
    // does with up to 100 in flight, and matches the answers by message_id.
    private void pipelined(int n) throws Exception {
        String name = "pipelined " + n + " requests";
        Map<Integer, Boolean> want = new HashMap<>();
        for (int i = 0; i < n; i++) {
            int id = 100 + i;
            boolean present = i % 2 == 0;
            want.put(id, present);
            HBMessage m = new HBMessage();
            m.setType(HBServerMessageType.EXISTS);
            m.setData(HBMessageData.path(present ? NODE_C : "/wb/absent-" + i));
            m.setMessage_id(id);
            writeFrame(m);
        }
        out.flush();
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            HBMessage resp = readFrame();
            Boolean w = resp.isSetMessage_id() ? want.remove(resp.getMessage_id()) : null;
            if (w == null) {
                problems.add("unexpected or repeated message_id in " + resp);
                continue;
            }
            if (resp.getType() != HBServerMessageType.EXISTS_RESPONSE || !resp.isSetData()
                    || !resp.getData().isSetBoolval() || resp.getData().getBoolval() != w) {
                problems.add("wrong answer " + resp);
            }
        }
        if (problems.isEmpty()) {
            ok(name);
        } else {
            fail(name, problems.toString());
        }
    }

    // --- framing and checks ---

    private HBMessage call(HBServerMessageType type, HBMessageData data) throws Exception {
        HBMessage m = new HBMessage();
        m.setType(type);
        m.setData(data);
        int id = nextId++;
        m.setMessage_id(id);
        writeFrame(m);
        out.flush();
        HBMessage resp = readFrame();
        if (!resp.isSetMessage_id() || resp.getMessage_id() != id) {
            fail(type + " message_id", "answer " + resp + " does not carry message_id " + id);
        }
        return resp;
    }

    private void writeFrame(HBMessage m) throws Exception {
        byte[] body = ser.serialize(m);
        out.writeInt(body.length);
        out.write(body);
    }

    private HBMessage readFrame() throws Exception {
        int n = in.readInt();
        if (n < 0 || n > 10485760) {
            throw new IllegalStateException("frame length " + n);
        }
        byte[] body = new byte[n];
        in.readFully(body);
        HBMessage m = new HBMessage();
        de.deserialize(m, body);
        return m;
    }

    private boolean expectType(String name, HBMessage resp, HBServerMessageType want) {
        if (resp.getType() != want) {
            fail(name, "answer type " + resp.getType() + ", want " + want + ": " + resp);
            return false;
        }
        return true;
    }

    private void expectNoData(String name, HBMessage resp, HBServerMessageType want) {
        if (!expectType(name, resp, want)) {
            return;
        }
        if (resp.isSetData()) {
            fail(name, "answer carries data, want none: " + resp);
        } else {
            ok(name);
        }
    }

    private void ok(String name) {
        checks++;
        System.out.println("ok   " + name);
    }

    private void fail(String name, String why) {
        checks++;
        failures++;
        System.out.println("FAIL " + name + ": " + why);
    }
}
