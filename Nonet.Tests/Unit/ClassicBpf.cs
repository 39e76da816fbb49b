using System;
using System.Buffers.Binary;

namespace Nonet.Tests.Unit;

/// <summary>struct seccomp_data: what a seccomp filter sees of one call.</summary>
public readonly record struct SeccompData(uint Arch, uint Nr, ulong A0 = 0, ulong A1 = 0, ulong A2 = 0, ulong A3 = 0,
    ulong A4 = 0, ulong A5 = 0, ulong InstructionPointer = 0)
{
    public const int Size = 64;

    /// <summary>The 64 bytes in this machine's (little-endian) order, as
    /// the kernel lays them out (&lt;linux/seccomp.h&gt;).</summary>
    public byte[] ToBytes()
    {
        var b = new byte[Size];
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0), Nr);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), Arch);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), InstructionPointer);
        ulong[] args = [A0, A1, A2, A3, A4, A5];
        for (int i = 0; i < args.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16 + 8 * i), args[i]);
        return b;
    }
}

/// <summary>
/// A classic BPF interpreter with the kernel's seccomp rules
/// (net/core/filter.c, kernel/seccomp.c: seccomp_check_filter): loads only
/// 32-bit words of struct seccomp_data at aligned offsets, forward jumps,
/// 16 words of scratch memory, and a program that must end in a return.
/// Anything else is refused, as the kernel refuses it, rather than guessed.
/// It lets the tests run nonet's filter over calls of architectures this
/// kernel cannot run (i386, x32).
/// </summary>
public sealed class ClassicBpf
{
    private readonly (ushort Code, byte Jt, byte Jf, uint K)[] program;

    private ClassicBpf((ushort, byte, byte, uint)[] program) => this.program = program;

    public int Length => program.Length;

    /// <summary>A program as the kernel gets it: struct sock_filter, 8 bytes
    /// an instruction.  Checked as seccomp(2) checks it.</summary>
    public static ClassicBpf Load(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0 || bytes.Length % 8 != 0 || bytes.Length / 8 > 4096)
            throw new FormatException($"a program of {bytes.Length} bytes");
        var p = new (ushort, byte, byte, uint)[bytes.Length / 8];
        for (int i = 0; i < p.Length; i++)
        {
            var insn = bytes.Slice(8 * i, 8);
            p[i] = (BinaryPrimitives.ReadUInt16LittleEndian(insn), insn[2], insn[3], BinaryPrimitives.ReadUInt32LittleEndian(insn[4..]));
        }
        var bpf = new ClassicBpf(p);
        bpf.Check();
        return bpf;
    }

    // Instruction classes and fields (<linux/bpf_common.h>).
    private const int Ld = 0x00, Ldx = 0x01, St = 0x02, Stx = 0x03, Alu = 0x04, Jmp = 0x05, Ret = 0x06, Misc = 0x07;
    private const int W = 0x00, Imm = 0x00, Abs = 0x20, Mem = 0x60, Len = 0x80;
    private const int K = 0x00, X = 0x08, A = 0x10;
    private const int Ja = 0x00, Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40;
    private const int Add = 0x00, Sub = 0x10, Mul = 0x20, Div = 0x30, Or = 0x40, And = 0x50, Lsh = 0x60, Rsh = 0x70,
        Neg = 0x80, Mod = 0x90, Xor = 0xa0;
    private const int Tax = 0x00, Txa = 0x80;

    private void Check()
    {
        for (int i = 0; i < program.Length; i++)
        {
            var (code, jt, jf, k) = program[i];
            switch (code & 0x07)
            {
                case Ld:
                    if (code == (Ld | W | Abs) && (k % 4 != 0 || k >= SeccompData.Size))
                        throw new FormatException($"instruction {i}: a load at offset {k}");
                    if (code is not ((Ld | W | Abs) or (Ld | Imm) or (Ld | Mem) or (Ld | W | Len)))
                        throw new FormatException($"instruction {i}: load 0x{code:x2}");
                    if (code == (Ld | Mem) && k >= 16)
                        throw new FormatException($"instruction {i}: scratch word {k}");
                    break;
                case Ldx:
                    if (code is not ((Ldx | Imm) or (Ldx | Mem) or (Ldx | W | Len)) || (code == (Ldx | Mem) && k >= 16))
                        throw new FormatException($"instruction {i}: load 0x{code:x2}");
                    break;
                case St:
                case Stx:
                    if (k >= 16)
                        throw new FormatException($"instruction {i}: scratch word {k}");
                    break;
                case Jmp:
                    long far = (code & 0xf0) == Ja ? k : Math.Max(jt, jf);
                    if (i + 1 + far >= program.Length)
                        throw new FormatException($"instruction {i}: a jump out of the program");
                    break;
                case Alu:
                    if ((code & 0xf0) is Div or Mod && (code & X) == 0 && k == 0)
                        throw new FormatException($"instruction {i}: division by zero");
                    break;
            }
        }
        if ((program[^1].Code & 0x07) != Ret)
            throw new FormatException("the program does not end in a return");
    }

    /// <summary>The action the program returns for <paramref name="call"/>
    /// (SECCOMP_RET_*, with its data).</summary>
    public uint Run(SeccompData call)
    {
        byte[] data = call.ToBytes();
        uint a = 0, x = 0;
        var mem = new uint[16];
        int pc = 0;
        while (true)
        {
            var (code, jt, jf, k) = program[pc++];
            uint operand = (code & X) != 0 ? x : k;
            switch (code & 0x07)
            {
                case Ld:
                    a = (code & 0xe0) switch
                    {
                        Abs => BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan((int)k)),
                        Mem => mem[k],
                        Len => SeccompData.Size,
                        _ => k,
                    };
                    break;
                case Ldx:
                    x = (code & 0xe0) switch { Mem => mem[k], Len => SeccompData.Size, _ => k };
                    break;
                case St:
                    mem[k] = a;
                    break;
                case Stx:
                    mem[k] = x;
                    break;
                case Alu:
                    a = (code & 0xf0) switch
                    {
                        Add => a + operand,
                        Sub => a - operand,
                        Mul => a * operand,
                        Div => operand == 0 ? throw new DivideByZeroException() : a / operand,
                        Mod => operand == 0 ? throw new DivideByZeroException() : a % operand,
                        Or => a | operand,
                        And => a & operand,
                        Xor => a ^ operand,
                        Lsh => operand >= 32 ? 0 : a << (int)operand,
                        Rsh => operand >= 32 ? 0 : a >> (int)operand,
                        Neg => (uint)-(int)a,
                        _ => throw new FormatException($"ALU 0x{code:x2}"),
                    };
                    break;
                case Jmp:
                    if ((code & 0xf0) == Ja)
                    {
                        pc += (int)k;
                        break;
                    }
                    bool taken = (code & 0xf0) switch
                    {
                        Jeq => a == operand,
                        Jgt => a > operand,
                        Jge => a >= operand,
                        Jset => (a & operand) != 0,
                        _ => throw new FormatException($"jump 0x{code:x2}"),
                    };
                    pc += taken ? jt : jf;
                    break;
                case Ret:
                    return (code & 0x18) == A ? a : k;
                case Misc:
                    if ((code & 0xf8) == Tax)
                        x = a;
                    else if ((code & 0xf8) == Txa)
                        a = x;
                    break;
            }
        }
    }
}
